//! `ffmpeg:` — builds an ffmpeg command from go2rtc's templates and runs it as an `exec:` source
//! that publishes RTSP into a private path of our own server.
//!
//! Format: `ffmpeg:{input}#{param}#{param}...`. The input is a URL (`rtsp://`, `http(s)://`,
//! `rtmp://`...), one of our stream names (read from our own RTSP server), `device?video=0&...`
//! (v4l2 / alsa) or a file. Parameters: `video=`, `audio=` (repeatable, template names or raw args,
//! `copy`), `input=`, `raw=`, `width=`, `height=`, `rotate=`, `drawtext=`, `bitrate=`, `hardware[=engine]`,
//! `async`. The templates are go2rtc's (`internal/ffmpeg/ffmpeg.go`); the `ffmpeg:` config section
//! overrides and extends them. The command strings are the same as go2rtc's.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::exec::{parse_query, query_get, CommandFn, ExecParams, ExecSource};
use crate::app::SourceContext;
use crate::config::FfmpegConfig;
use crate::hub::{Source, SourceFactory};

/// How long an ffmpeg child may take to publish.
const FFMPEG_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// go2rtc's built-in templates (`defaults` in go2rtc's `internal/ffmpeg/ffmpeg.go`).
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    ("bin", "ffmpeg"),
    ("global", "-hide_banner"),
    // inputs
    ("file", "-re -i {input}"),
    ("http", "-fflags nobuffer -flags low_delay -i {input}"),
    ("rtsp", "-fflags nobuffer -flags low_delay -timeout 5000000 -user_agent go2rtc/ffmpeg -rtsp_flags prefer_tcp -i {input}"),
    ("rtsp/udp", "-fflags nobuffer -flags low_delay -timeout 5000000 -user_agent go2rtc/ffmpeg -i {input}"),
    // output
    ("output", "-user_agent ffmpeg/go2rtc -rtsp_transport tcp -f rtsp {output}"),
    ("output/mjpeg", "-f mjpeg -"),
    ("output/raw", "-f yuv4mpegpipe -"),
    ("output/aac", "-f adts -"),
    ("output/wav", "-f wav -"),
    // video
    ("h264", "-c:v libx264 -g 50 -profile:v high -level:v 4.1 -preset:v superfast -tune:v zerolatency -pix_fmt:v yuv420p"),
    ("h265", "-c:v libx265 -g 50 -profile:v main -level:v 5.1 -preset:v superfast -tune:v zerolatency -pix_fmt:v yuv420p"),
    // go2rtc's is `-c:v mjpeg`, piped out and re-encoded by go2rtc itself; ours is published as RTP/JPEG
    // (RFC 2435), which cannot carry Huffman tables: receivers assume the standard ones (ITU T.81 K.3),
    // and ffmpeg's encoder defaults to optimal tables (`-huffman optimal`), which they cannot decode.
    // Both quantization tables are sent even when equal: ffmpeg's RTP/JPEG reader warns on one.
    ("mjpeg", "-c:v mjpeg -huffman default -force_duplicated_matrix 1"),
    ("raw", "-c:v rawvideo"),
    ("raw/gray8", "-c:v rawvideo -pix_fmt:v gray8"),
    ("raw/yuv420p", "-c:v rawvideo -pix_fmt:v yuv420p"),
    ("raw/yuv422p", "-c:v rawvideo -pix_fmt:v yuv422p"),
    ("raw/yuv444p", "-c:v rawvideo -pix_fmt:v yuv444p"),
    // audio
    ("opus", "-c:a libopus -application:a lowdelay -min_comp 0"),
    ("opus/16000", "-c:a libopus -application:a lowdelay -min_comp 0 -ar:a 16000 -ac:a 1"),
    ("pcmu", "-c:a pcm_mulaw -ar:a 8000 -ac:a 1"),
    ("pcmu/8000", "-c:a pcm_mulaw -ar:a 8000 -ac:a 1"),
    ("pcmu/16000", "-c:a pcm_mulaw -ar:a 16000 -ac:a 1"),
    ("pcmu/48000", "-c:a pcm_mulaw -ar:a 48000 -ac:a 1"),
    ("pcma", "-c:a pcm_alaw -ar:a 8000 -ac:a 1"),
    ("pcma/8000", "-c:a pcm_alaw -ar:a 8000 -ac:a 1"),
    ("pcma/16000", "-c:a pcm_alaw -ar:a 16000 -ac:a 1"),
    ("pcma/48000", "-c:a pcm_alaw -ar:a 48000 -ac:a 1"),
    ("aac", "-c:a aac"),
    ("aac/16000", "-c:a aac -ar:a 16000 -ac:a 1"),
    ("mp3", "-c:a libmp3lame -q:a 8"),
    ("pcm", "-c:a pcm_s16be -ar:a 8000 -ac:a 1"),
    ("pcm/8000", "-c:a pcm_s16be -ar:a 8000 -ac:a 1"),
    ("pcm/16000", "-c:a pcm_s16be -ar:a 16000 -ac:a 1"),
    ("pcm/48000", "-c:a pcm_s16be -ar:a 48000 -ac:a 1"),
    ("pcml", "-c:a pcm_s16le -ar:a 8000 -ac:a 1"),
    ("pcml/8000", "-c:a pcm_s16le -ar:a 8000 -ac:a 1"),
    ("pcml/44100", "-c:a pcm_s16le -ar:a 44100 -ac:a 1"),
    // hardware Intel and AMD on Linux
    ("h264/vaapi", "-c:v h264_vaapi -g 50 -bf 0 -profile:v high -level:v 4.1 -sei:v 0"),
    ("h265/vaapi", "-c:v hevc_vaapi -g 50 -bf 0 -profile:v main -level:v 5.1 -sei:v 0"),
    ("mjpeg/vaapi", "-c:v mjpeg_vaapi"),
    // hardware Raspberry
    ("h264/v4l2m2m", "-c:v h264_v4l2m2m -g 50 -bf 0"),
    ("h265/v4l2m2m", "-c:v hevc_v4l2m2m -g 50 -bf 0"),
    // hardware Rockchip
    ("h264/rkmpp", "-c:v h264_rkmpp_encoder -g 50 -bf 0 -profile:v high -level:v 4.1"),
    ("h265/rkmpp", "-c:v hevc_rkmpp_encoder -g 50 -bf 0 -level:v 5.1"),
    // hardware NVidia on Linux and Windows
    ("h264/cuda", "-c:v h264_nvenc -g 50 -bf 0 -profile:v high -level:v auto -preset:v p2 -tune:v ll"),
    ("h265/cuda", "-c:v hevc_nvenc -g 50 -bf 0 -profile:v main -level:v auto"),
    // hardware Intel on Windows
    ("h264/dxva2", "-c:v h264_qsv -g 50 -bf 0 -profile:v high -level:v 4.1 -async_depth:v 1"),
    ("h265/dxva2", "-c:v hevc_qsv -g 50 -bf 0 -profile:v main -level:v 5.1 -async_depth:v 1"),
    ("mjpeg/dxva2", "-c:v mjpeg_qsv"),
    // hardware macOS
    ("h264/videotoolbox", "-c:v h264_videotoolbox -g 50 -bf 0 -profile:v high -level:v 4.1"),
    ("h265/videotoolbox", "-c:v hevc_videotoolbox -g 50 -bf 0 -profile:v main -level:v 5.1"),
];

/// The template map: go2rtc's defaults, overridden and extended by the `ffmpeg:` config section.
#[derive(Clone, Debug)]
pub struct Templates {
    map: HashMap<String, String>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates { map: DEFAULT_TEMPLATES.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }
}

impl Templates {
    /// Defaults plus the config's `bin:` and templates.
    pub fn from_config(cfg: &FfmpegConfig) -> Templates {
        let mut t = Templates::default();
        for (k, v) in &cfg.templates {
            t.map.insert(k.clone(), v.clone());
        }
        t.map.insert("bin".into(), cfg.bin.clone());
        t
    }

    /// A template by name; an empty one counts as missing (as in go2rtc).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str).filter(|s| !s.is_empty())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.map.insert(name.to_string(), value.to_string());
    }

    /// go2rtc's `configTemplate`: the named template, or the text itself as a raw template.
    fn or_raw<'a>(&'a self, name: &'a str) -> &'a str {
        self.get(name).unwrap_or(name)
    }
}

/// An ffmpeg command line under construction (go2rtc's `ffmpeg.Args`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args {
    pub bin: String,
    pub global: String,
    pub input: String,
    pub codecs: Vec<String>,
    pub filters: Vec<String>,
    pub output: String,
    /// Counts of `video=` and `audio=` parameters.
    pub video: usize,
    pub audio: usize,
    /// Why `#hardware` encodes in software here (no device for the engine), for the log.
    pub software_fallback: Option<String>,
}

impl Args {
    fn has_filters(&self, prefixes: &[&str]) -> bool {
        self.filters.iter().any(|f| prefixes.iter().any(|p| f.starts_with(p)))
    }

    fn insert_filter(&mut self, filter: &str) {
        self.filters.insert(0, filter.to_string());
    }
}

impl std::fmt::Display for Args {
    /// go2rtc's `Args.String()`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = self.bin.clone();
        if !self.global.is_empty() {
            s.push(' ');
            s.push_str(&self.global);
        }
        s.push(' ');
        s.push_str(&self.input);
        let multimode = self.video > 1 || self.audio > 1;
        let (mut iv, mut ia) = (0, 0);
        for codec in &self.codecs {
            let mut codec = codec.clone();
            if multimode && codec.len() >= 5 {
                if codec.starts_with("-c:v ") {
                    codec = format!("-map 0:v:0? {}", codec.replace(":v ", &format!(":v:{iv} ")));
                    iv += 1;
                } else if codec.starts_with("-c:a ") {
                    codec = format!("-map 0:a:0? {}", codec.replace(":a ", &format!(":a:{ia} ")));
                    ia += 1;
                }
            }
            s.push(' ');
            s.push_str(&codec);
        }
        if !self.filters.is_empty() {
            s.push_str(" -vf \"");
            s.push_str(&self.filters.join(","));
            s.push('"');
        }
        s.push(' ');
        s.push_str(&self.output);
        f.write_str(&s)
    }
}

/// What the command builder needs to know about the server.
pub struct BuildEnv<'a> {
    /// Whether a name is one of our streams.
    pub is_stream: &'a dyn Fn(&str) -> bool,
    /// `rtsp://127.0.0.1:PORT` of our RTSP server, when it listens.
    pub rtsp_base: Option<&'a str>,
    /// Whether a device file exists (`/dev/dri/renderD128`), for `#hardware`.
    pub device_exists: &'a dyn Fn(&str) -> bool,
}

/// The device file each Linux hardware engine encodes with; other engines (macOS's `videotoolbox`,
/// Windows' `dxva2`) have none to check.
fn engine_device(engine: &str) -> Option<&'static str> {
    match engine {
        "vaapi" => Some("/dev/dri/renderD128"),
        "cuda" => Some("/dev/nvidia0"),
        "rkmpp" => Some("/dev/mpp_service"),
        "v4l2m2m" => Some("/dev/video11"),
        _ => None,
    }
}

/// `#hardware[=engine]`: the engine to encode with, or why it is software. Without an engine (go2rtc
/// probes encoders with test runs) the first engine whose device exists is used: VA-API, then CUDA.
fn hardware_engine(requested: &str, device_exists: &dyn Fn(&str) -> bool) -> Result<String, String> {
    if requested.is_empty() {
        return ["vaapi", "cuda"]
            .into_iter()
            .find(|e| engine_device(e).is_some_and(device_exists))
            .map(str::to_string)
            .ok_or_else(|| {
                "#hardware: no hardware encoder here (no /dev/dri/renderD128, no /dev/nvidia0): encoding in software"
                    .to_string()
            });
    }
    match engine_device(requested) {
        Some(device) if device_exists(device) => Ok(requested.to_string()),
        Some(device) => Err(format!("#hardware={requested}: no {device} here: encoding in software")),
        // Nothing to check: used as asked (ffmpeg names the problem if the engine is missing).
        None => Ok(requested.to_string()),
    }
}

/// go2rtc's `inputTemplate`: the `#input=` template (by name or raw) or the default one for the kind.
fn input_template(t: &Templates, name: &str, input: &str, query: &[(String, String)]) -> String {
    let template = match query_get(query, "input").filter(|s| !s.is_empty()) {
        Some(i) => t.or_raw(i).to_string(),
        None => t.get(name).unwrap_or_default().to_string(),
    };
    template.replacen("{input}", input, 1)
}

/// go2rtc's device module on Linux: `video=` → v4l2, else `audio=` → alsa. A numeric video is
/// `/dev/videoN`; audio `0` is ALSA's `default`.
pub fn device_input(query: &str) -> Result<String, String> {
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    if let Some(video) = get("video") {
        let mut input = "-f v4l2".to_string();
        for (k, v) in &pairs {
            match k.as_str() {
                "resolution" => input += &format!(" -video_size {v}"),
                "video_size" | "pixel_format" | "input_format" | "framerate" | "use_libv4l2" => {
                    input += &format!(" -{k} {v}")
                }
                _ => {}
            }
        }
        let device =
            if video.bytes().all(|b| b.is_ascii_digit()) { format!("/dev/video{video}") } else { video.into() };
        return Ok(format!("{input} -i {device}"));
    }
    if let Some(audio) = get("audio") {
        let mut input = "-f alsa".to_string();
        for (k, v) in &pairs {
            if matches!(k.as_str(), "channels" | "sample_rate") {
                input += &format!(" -{k} {v}");
            }
        }
        let device = if audio == "0" { "default" } else { audio };
        return Ok(format!("{input} -i {device}"));
    }
    Err("device: needs video= or audio=".into())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// go2rtc's `parseArgs`: builds the command for `ffmpeg:{s}` (without the `ffmpeg:` prefix).
pub fn parse_args(s: &str, t: &Templates, env: &BuildEnv) -> Result<Args, String> {
    let mut args = Args {
        bin: t.get("bin").unwrap_or("ffmpeg").to_string(),
        global: t.get("global").unwrap_or_default().to_string(),
        output: t.get("output").unwrap_or_default().to_string(),
        ..Args::default()
    };
    let (input, query) = match s.split_once('#') {
        Some((input, q)) => (input, parse_query(q)),
        None => (s, Vec::new()),
    };
    args.video = query.iter().filter(|(k, _)| k == "video").count();
    args.audio = query.iter().filter(|(k, _)| k == "audio").count();
    let values = |key: &str| -> Vec<&str> { query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect() };
    let has = |key: &str| query.iter().any(|(k, _)| k == key);
    let first = |key: &str| query_get(&query, key);

    if input.is_empty() {
        return Err("ffmpeg: no input".into());
    }
    if let Some(i) = input.find("://").filter(|&i| i > 0) {
        match &input[..i] {
            "http" | "https" | "rtmp" => args.input = input_template(t, "http", input, &query),
            "rtsp" | "rtsps" => {
                args.input = match (args.video, args.audio) {
                    (v, a) if (v > 0 && a > 0) || (v == 0 && a == 0) => "-allowed_media_types video+audio ",
                    (v, _) if v > 0 => "-allowed_media_types video ",
                    _ => "-allowed_media_types audio ",
                }
                .to_string();
                args.input += &input_template(t, "rtsp", input, &query);
            }
            _ => args.input = format!("-i {input}"),
        }
    } else if (env.is_stream)(input) {
        let base = env.rtsp_base.ok_or("ffmpeg: the RTSP server is disabled, cannot read a stream by name")?;
        let mut url = format!("{base}/{input}");
        url += match (args.video, args.audio) {
            (v, 0) if v > 0 => "?video",
            (0, a) if a > 0 => "?audio",
            _ => "?video&audio",
        };
        args.input = input_template(t, "rtsp", &url, &query);
    } else if let Some(i) = input.find('?').filter(|&i| i > 0) {
        match &input[..i] {
            "device" => args.input = device_input(&input[i + 1..])?,
            other => return Err(format!("ffmpeg: unsupported input {other:?} (supported: device?...)")),
        }
    } else {
        args.input = input_template(t, "file", input, &query);
    }

    if has("async") {
        args.input = format!("-use_wallclock_as_timestamps 1 -async 1 {}", args.input);
    }

    if !query.is_empty() {
        for raw in values("raw") {
            args.codecs.push(t.or_raw(raw).to_string());
        }
        if has("width") || has("height") {
            let w = first("width").unwrap_or("-1");
            let h = first("height").unwrap_or("-1");
            args.filters.push(format!("scale={w}:{h}"));
        }
        if let Some(rotate) = first("rotate") {
            let filter = match rotate {
                "90" => "transpose=1",
                "180" => "transpose=1,transpose=1",
                "-90" | "270" => "transpose=2",
                _ => "",
            };
            if !filter.is_empty() {
                args.filters.push(filter.to_string());
            }
        }
        for drawtext in values("drawtext") {
            let mut d = t.or_raw(drawtext).to_string();
            if !d.contains("text=") {
                d += r":text='%{localtime\:%Y-%m-%d %X}'";
            }
            args.filters.push(format!("drawtext={d}"));
        }
        if args.video > 0 {
            for video in values("video") {
                args.codecs.push(if video == "copy" { "-c:v copy".to_string() } else { t.or_raw(video).to_string() });
            }
        }
        if let Some(b) = first("bitrate") {
            args.codecs.push(format!("-b:v {b} -maxrate {b} -bufsize {b}"));
        }
        if args.audio > 0 {
            for audio in values("audio") {
                args.codecs.push(if audio == "copy" { "-c:a copy".to_string() } else { t.or_raw(audio).to_string() });
            }
        }
        if let Some(requested) = first("hardware").or_else(|| first("hw")) {
            match hardware_engine(requested, env.device_exists) {
                Ok(engine) => make_hardware(&mut args, &engine, t),
                Err(why) => args.software_fallback = Some(why),
            }
        }
    }

    // Also a raw `-c:v mjpeg` or an overridden `mjpeg` template: see the template's comment.
    if !args.codecs.iter().any(|c| c.contains("-huffman")) {
        for codec in args.codecs.iter_mut().filter(|c| encodes_mjpeg(c)) {
            codec.push_str(" -huffman default");
        }
    }

    match (args.video, args.audio) {
        (0, 0) => args.codecs.push("-c copy".into()),
        (0, _) => args.codecs.push("-vn".into()),
        (_, 0) => args.codecs.push("-an".into()),
        _ => {}
    }
    // go2rtc switches some single-codec outputs to pipes (`-f mjpeg -`, `-f adts -`, `-f wav -`); we
    // always publish RTSP into our server (`output` template), so every codec reaches every reader.
    Ok(args)
}

/// Whether codec arguments select ffmpeg's software MJPEG encoder (`-c:v mjpeg`, `-codec:v:0 mjpeg`...).
fn encodes_mjpeg(codec: &str) -> bool {
    let tokens: Vec<&str> = codec.split_whitespace().collect();
    tokens.windows(2).any(|w| {
        let option = w[0].split(':').next().unwrap_or("");
        let video = w[0] == "-vcodec" || w[0].split(':').nth(1) == Some("v");
        matches!(option, "-c" | "-codec" | "-vcodec") && video && w[1] == "mjpeg"
    })
}

/// go2rtc's `hardware.MakeHardware` for an engine chosen by [`hardware_engine`].
fn make_hardware(args: &mut Args, engine: &str, t: &Templates) {
    for i in 0..args.codecs.len() {
        let codec = args.codecs[i].clone();
        if codec.len() < 10 {
            continue;
        }
        let name = match codec.split(' ').nth(1).unwrap_or("") {
            "libx264" => "h264",
            "libx265" => "h265",
            "mjpeg" => "mjpeg",
            _ => continue,
        };
        let hw = t.get(&format!("{name}/{engine}")).unwrap_or_default().to_string();
        match engine {
            "vaapi" => {
                args.codecs[i] = hw;
                if !args.has_filters(&["drawtext="]) {
                    args.input = format!(
                        "-hwaccel vaapi -hwaccel_output_format vaapi -hwaccel_flags allow_profile_mismatch {}",
                        args.input
                    );
                    if name == "h264" {
                        fix_pixel_format(args);
                    }
                    for f in &mut args.filters {
                        if let Some(rest) = f.strip_prefix("scale=") {
                            *f = format!("scale_vaapi={rest}");
                        }
                        if let Some(rest) = f.strip_prefix("transpose=") {
                            *f = if f == "transpose=1,transpose=1" {
                                "transpose_vaapi=4".to_string()
                            } else {
                                format!("transpose_vaapi={rest}")
                            };
                        }
                    }
                    args.insert_filter("format=vaapi|nv12,hwupload");
                } else {
                    args.input = format!(
                        "-hwaccel vaapi -hwaccel_output_format nv12 -hwaccel_flags allow_profile_mismatch {}",
                        args.input
                    );
                    args.filters.push("hwupload".into());
                }
            }
            "cuda" => {
                args.codecs[i] = hw;
                if !args.has_filters(&["drawtext=", "transpose="]) {
                    args.input = format!("-hwaccel cuda -hwaccel_output_format cuda {}", args.input);
                    for f in &mut args.filters {
                        if let Some(rest) = f.strip_prefix("scale=") {
                            *f = format!("scale_cuda={rest}");
                        }
                    }
                } else {
                    args.input = format!("-hwaccel cuda -hwaccel_output_format nv12 {}", args.input);
                    args.filters.push("hwupload".into());
                }
            }
            "dxva2" => {
                args.input = format!("-hwaccel dxva2 -hwaccel_output_format dxva2_vld {}", args.input);
                args.codecs[i] = hw;
                for f in &mut args.filters {
                    if let Some(rest) = f.strip_prefix("scale=") {
                        *f = format!("scale_qsv={rest}");
                    }
                }
                args.insert_filter("hwmap=derive_device=qsv,format=qsv");
            }
            "videotoolbox" => {
                args.input = format!("-hwaccel videotoolbox -hwaccel_output_format videotoolbox_vld {}", args.input);
                args.codecs[i] = hw;
            }
            "v4l2m2m" => args.codecs[i] = hw,
            "rkmpp" => {
                args.codecs[i] = hw;
                if let Some(j) = args.filters.iter().position(|f| f.starts_with("scale=")) {
                    let f = args.filters.remove(j);
                    let (w, h) = f[6..].split_once(':').unwrap_or((&f[6..], ""));
                    if w != "-1" {
                        args.codecs[i] += &format!(" -width {w}");
                    }
                    if h != "-1" {
                        args.codecs[i] += &format!(" -height {h}");
                    }
                }
            }
            _ => {}
        }
    }
}

/// go2rtc's `fixPixelFormat` for VAAPI H.264.
fn fix_pixel_format(args: &mut Args) {
    const FIX: &str = "out_color_matrix=bt709:out_range=tv:format=nv12";
    if let Some(f) = args.filters.iter_mut().find(|f| f.starts_with("scale=")) {
        *f = format!("{f}:{FIX}");
        return;
    }
    args.filters.push(format!("scale={FIX}"));
}

/// ffmpeg's `-v` level from the `log: ffmpeg:` level (go2rtc's mapping; default `error`).
fn ffmpeg_log_level(ctx: &SourceContext) -> String {
    let config = ctx.config();
    let level = config.log.modules.iter().find(|(m, _)| m == "ffmpeg").map(|(_, l)| l.as_str()).unwrap_or("error");
    match level {
        "warn" => "warning",
        "off" | "disabled" => "quiet",
        "" => "error",
        l => l,
    }
    .to_string()
}

pub fn factory(ctx: &SourceContext) -> SourceFactory {
    let ctx = ctx.clone();
    let mut templates = Templates::from_config(&ctx.config().ffmpeg);
    let global = format!("{} -v {}", templates.get("global").unwrap_or_default(), ffmpeg_log_level(&ctx));
    templates.set("global", global.trim());
    let templates = Arc::new(templates);
    Arc::new(move |url: &str| {
        let rest = url.strip_prefix("ffmpeg:").ok_or("ffmpeg: URL must start with ffmpeg:")?;
        // Syntax check now; stream names are resolved when the child starts (streams may come later).
        let probe = BuildEnv { is_stream: &|_| false, rtsp_base: None, device_exists: &|_| true };
        parse_args(rest, &templates, &probe)?;
        let (rest, templates, ctx2) = (rest.to_string(), templates.clone(), ctx.clone());
        let command: CommandFn = Arc::new(move || {
            let hub = ctx2.hub.get().and_then(Weak::upgrade);
            let is_stream = |name: &str| hub.as_ref().is_some_and(|h| h.get(name).is_some());
            let device_exists = |path: &str| std::path::Path::new(path).exists();
            let env = BuildEnv {
                is_stream: &is_stream,
                rtsp_base: ctx2.publishers.base_url(),
                device_exists: &device_exists,
            };
            let args = parse_args(&rest, &templates, &env)?;
            if let Some(why) = &args.software_fallback {
                tracing::info!(module = "ffmpeg", source = %crate::secrets::mask_url(&rest), "{why}");
            }
            Ok(args.to_string())
        });
        // Encoders and RTSP input probing take longer to start than a plain exec.
        let params = ExecParams { start_timeout: FFMPEG_START_TIMEOUT, ..ExecParams::default() };
        let source = ExecSource::new("ffmpeg", url, command, params, &ctx);
        Ok(Arc::new(source) as Arc<dyn Source>)
    })
}

#[cfg(test)]
mod tests;
