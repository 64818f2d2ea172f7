//! Command-builder table tests. Expected strings are go2rtc's (`internal/ffmpeg/ffmpeg_test.go`),
//! built with the default templates (global `-hide_banner`, without the runtime `-v error`).

use super::*;

const OUT: &str = "-user_agent ffmpeg/go2rtc -rtsp_transport tcp -f rtsp {output}";
const RTSP_IN: &str =
    "-fflags nobuffer -flags low_delay -timeout 5000000 -user_agent go2rtc/ffmpeg -rtsp_flags prefer_tcp -i";
const H264: &str =
    "-c:v libx264 -g 50 -profile:v high -level:v 4.1 -preset:v superfast -tune:v zerolatency -pix_fmt:v yuv420p";
const H265: &str =
    "-c:v libx265 -g 50 -profile:v main -level:v 5.1 -preset:v superfast -tune:v zerolatency -pix_fmt:v yuv420p";

fn build(source: &str) -> String {
    build_with(source, &Templates::default())
}

fn build_with(source: &str, t: &Templates) -> String {
    let env = BuildEnv {
        is_stream: &|name| name == "camera1" || name == "src",
        rtsp_base: Some("rtsp://127.0.0.1:8554"),
        device_exists: &|_| true,
    };
    parse_args(source, t, &env).unwrap().to_string()
}

#[test]
fn files() {
    let cases = [
        ("/media/bbb.mp4", format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 -c copy {OUT}")),
        ("/media/bbb.mp4#video=h264", format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 {H264} -an {OUT}")),
        (
            "/media/bbb.mp4#video=copy#audio=pcmu",
            format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 -c:v copy -c:a pcm_mulaw -ar:a 8000 -ac:a 1 {OUT}"),
        ),
        (
            "/media/bbb.mp4#video=h265#rotate=-90",
            format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 {H265} -an -vf \"transpose=2\" {OUT}"),
        ),
        (
            "ffmpeg:test.mp4#raw=-ss 00:00:20",
            format!("ffmpeg -hide_banner -re -i ffmpeg:test.mp4 -ss 00:00:20 -c copy {OUT}"),
        ),
        // go2rtc pipes `#video=mjpeg` out as `-f mjpeg -`; we always publish RTSP, as RTP/JPEG: standard
        // Huffman tables (RFC 2435 cannot carry others).
        (
            "/media/bbb.mp4#video=mjpeg",
            format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 -c:v mjpeg -huffman default -force_duplicated_matrix 1 -an {OUT}"),
        ),
        (
            "/media/bbb.mp4#video=-c:v mjpeg -q:v 3",
            format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 -c:v mjpeg -q:v 3 -huffman default -an {OUT}"),
        ),
        (
            "/media/bbb.mp4#video=-c:v mjpeg -huffman optimal",
            format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 -c:v mjpeg -huffman optimal -an {OUT}"),
        ),
        (
            "/media/bbb.mp4#video=copy#audio=copy#audio=pcmu",
            format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 -map 0:v:0? -c:v:0 copy -map 0:a:0? -c:a:0 copy -map 0:a:0? -c:a:1 pcm_mulaw -ar:a:1 8000 -ac:a:1 1 {OUT}"),
        ),
        (
            "/media/bbb.mp4#video=h264#async",
            format!("ffmpeg -hide_banner -use_wallclock_as_timestamps 1 -async 1 -re -i /media/bbb.mp4 {H264} -an {OUT}"),
        ),
        (
            "/media/bbb.mp4#video=h264#bitrate=1M",
            format!("ffmpeg -hide_banner -re -i /media/bbb.mp4 {H264} -b:v 1M -maxrate 1M -bufsize 1M -an {OUT}"),
        ),
    ];
    for (source, expect) in cases {
        assert_eq!(build(source), expect, "{source}");
    }
}

#[test]
fn ip_cameras() {
    let cases = [
        ("http://example.com", format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http://example.com -c copy {OUT}")),
        ("http://example.com#video=h264", format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http://example.com {H264} -an {OUT}")),
        ("https://example.com#video=copy", format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i https://example.com -c:v copy -an {OUT}")),
        ("rtsp://example.com", format!("ffmpeg -hide_banner -allowed_media_types video+audio {RTSP_IN} rtsp://example.com -c copy {OUT}")),
        (
            "rtsp://example.com#video=h265#width=1280#height=720",
            format!("ffmpeg -hide_banner -allowed_media_types video {RTSP_IN} rtsp://example.com {H265} -an -vf \"scale=1280:720\" {OUT}"),
        ),
        (
            "rtsp://example.com#input=rtsp/udp",
            format!("ffmpeg -hide_banner -allowed_media_types video+audio -fflags nobuffer -flags low_delay -timeout 5000000 -user_agent go2rtc/ffmpeg -i rtsp://example.com -c copy {OUT}"),
        ),
        (
            "rtmp://example.com#input=rtsp/udp",
            format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -timeout 5000000 -user_agent go2rtc/ffmpeg -i rtmp://example.com -c copy {OUT}"),
        ),
        (
            "rtsp://example.com#input=-timeout 5000000 -i {input}",
            format!("ffmpeg -hide_banner -allowed_media_types video+audio -timeout 5000000 -i rtsp://example.com -c copy {OUT}"),
        ),
        ("srt://example.com:9000", format!("ffmpeg -hide_banner -i srt://example.com:9000 -c copy {OUT}")),
    ];
    for (source, expect) in cases {
        assert_eq!(build(source), expect, "{source}");
    }
}

#[test]
fn audio() {
    let cases = [
        ("aac", "-c:a aac"),
        ("aac/16000", "-c:a aac -ar:a 16000 -ac:a 1"),
        ("opus", "-c:a libopus -application:a lowdelay -min_comp 0"),
        ("pcmu", "-c:a pcm_mulaw -ar:a 8000 -ac:a 1"),
        ("pcmu/16000", "-c:a pcm_mulaw -ar:a 16000 -ac:a 1"),
        ("pcmu/48000", "-c:a pcm_mulaw -ar:a 48000 -ac:a 1"),
        ("pcma", "-c:a pcm_alaw -ar:a 8000 -ac:a 1"),
        ("pcma/16000", "-c:a pcm_alaw -ar:a 16000 -ac:a 1"),
        ("pcma/48000", "-c:a pcm_alaw -ar:a 48000 -ac:a 1"),
    ];
    for (codec, args) in cases {
        // go2rtc pipes single aac/pcm* outputs (`-f adts -`, `-f wav -`); we always publish RTSP.
        assert_eq!(
            build(&format!("rtsp:///example.com#audio={codec}")),
            format!("ffmpeg -hide_banner -allowed_media_types audio {RTSP_IN} rtsp:///example.com {args} -vn {OUT}"),
            "{codec}"
        );
    }
}

#[test]
fn stream_names_and_devices() {
    let cases = [
        (
            "camera1#video=h264",
            format!("ffmpeg -hide_banner {RTSP_IN} rtsp://127.0.0.1:8554/camera1?video {H264} -an {OUT}"),
        ),
        (
            "src#video=h264#audio=opus#width=320",
            format!("ffmpeg -hide_banner {RTSP_IN} rtsp://127.0.0.1:8554/src?video&audio {H264} -c:a libopus -application:a lowdelay -min_comp 0 -vf \"scale=320:-1\" {OUT}"),
        ),
        ("camera1#audio=pcma", format!("ffmpeg -hide_banner {RTSP_IN} rtsp://127.0.0.1:8554/camera1?audio -c:a pcm_alaw -ar:a 8000 -ac:a 1 -vn {OUT}")),
        ("camera1", format!("ffmpeg -hide_banner {RTSP_IN} rtsp://127.0.0.1:8554/camera1?video&audio -c copy {OUT}")),
        // Not a stream: a file.
        ("camera2#video=h264", format!("ffmpeg -hide_banner -re -i camera2 {H264} -an {OUT}")),
        (
            "device?video=0&video_size=1280x720#video=h264",
            format!("ffmpeg -hide_banner -f v4l2 -video_size 1280x720 -i /dev/video0 {H264} -an {OUT}"),
        ),
        (
            "device?video=/dev/video2&input_format=mjpeg&framerate=30",
            format!("ffmpeg -hide_banner -f v4l2 -input_format mjpeg -framerate 30 -i /dev/video2 -c copy {OUT}"),
        ),
        (
            "device?audio=default&channels=1&sample_rate=16000&#audio=opus",
            format!("ffmpeg -hide_banner -f alsa -channels 1 -sample_rate 16000 -i default -c:a libopus -application:a lowdelay -min_comp 0 -vn {OUT}"),
        ),
    ];
    for (source, expect) in cases {
        assert_eq!(build(source), expect, "{source}");
    }
}

#[test]
fn hardware_vaapi() {
    let hw = "-hwaccel vaapi -hwaccel_output_format vaapi -hwaccel_flags allow_profile_mismatch";
    let cases = [
        (
            "http:///example.com#video=h264#hardware=vaapi",
            format!("ffmpeg -hide_banner {hw} -fflags nobuffer -flags low_delay -i http:///example.com -c:v h264_vaapi -g 50 -bf 0 -profile:v high -level:v 4.1 -sei:v 0 -an -vf \"format=vaapi|nv12,hwupload,scale_vaapi=out_color_matrix=bt709:out_range=tv:format=nv12\" {OUT}"),
        ),
        (
            "rtsp://example.com#video=h264#rotate=180#hardware=vaapi",
            format!("ffmpeg -hide_banner {hw} -allowed_media_types video {RTSP_IN} rtsp://example.com -c:v h264_vaapi -g 50 -bf 0 -profile:v high -level:v 4.1 -sei:v 0 -an -vf \"format=vaapi|nv12,hwupload,transpose_vaapi=4,scale_vaapi=out_color_matrix=bt709:out_range=tv:format=nv12\" {OUT}"),
        ),
        (
            "rtsp://example.com#video=h265#width=1280#height=720#hardware=vaapi",
            format!("ffmpeg -hide_banner {hw} -allowed_media_types video {RTSP_IN} rtsp://example.com -c:v hevc_vaapi -g 50 -bf 0 -profile:v main -level:v 5.1 -sei:v 0 -an -vf \"format=vaapi|nv12,hwupload,scale_vaapi=1280:720\" {OUT}"),
        ),
        (
            r#"DeckLink SDI (2)#video=h264#hardware=vaapi#input=-format_code Hp29 -f decklink -i "{input}""#,
            format!("ffmpeg -hide_banner {hw} -format_code Hp29 -f decklink -i \"DeckLink SDI (2)\" -c:v h264_vaapi -g 50 -bf 0 -profile:v high -level:v 4.1 -sei:v 0 -an -vf \"format=vaapi|nv12,hwupload,scale_vaapi=out_color_matrix=bt709:out_range=tv:format=nv12\" {OUT}"),
        ),
    ];
    for (source, expect) in cases {
        assert_eq!(build(source), expect, "{source}");
    }
}

#[test]
fn hardware_other_engines() {
    let cases = [
        (
            "http://example.com#video=h264#hardware=rkmpp",
            format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http://example.com -c:v h264_rkmpp_encoder -g 50 -bf 0 -profile:v high -level:v 4.1 -an {OUT}"),
        ),
        (
            "http://example.com#video=h264#rotate=180#hardware=rkmpp",
            format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http://example.com -c:v h264_rkmpp_encoder -g 50 -bf 0 -profile:v high -level:v 4.1 -an -vf \"transpose=1,transpose=1\" {OUT}"),
        ),
        (
            "http://example.com#video=h264#height=320#hardware=rkmpp",
            format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http://example.com -c:v h264_rkmpp_encoder -g 50 -bf 0 -profile:v high -level:v 4.1 -height 320 -an {OUT}"),
        ),
        (
            "http:///example.com#video=h264#hardware=v4l2m2m",
            format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http:///example.com -c:v h264_v4l2m2m -g 50 -bf 0 -an {OUT}"),
        ),
        (
            "rtsp://example.com#video=h264#rotate=180#hardware=cuda",
            format!("ffmpeg -hide_banner -hwaccel cuda -hwaccel_output_format nv12 -allowed_media_types video {RTSP_IN} rtsp://example.com -c:v h264_nvenc -g 50 -bf 0 -profile:v high -level:v auto -preset:v p2 -tune:v ll -an -vf \"transpose=1,transpose=1,hwupload\" {OUT}"),
        ),
        (
            "rtsp://example.com#video=h265#width=1280#height=720#hardware=cuda",
            format!("ffmpeg -hide_banner -hwaccel cuda -hwaccel_output_format cuda -allowed_media_types video {RTSP_IN} rtsp://example.com -c:v hevc_nvenc -g 50 -bf 0 -profile:v main -level:v auto -an -vf \"scale_cuda=1280:720\" {OUT}"),
        ),
        (
            "http:///example.com#video=h264#hardware=dxva2",
            format!("ffmpeg -hide_banner -hwaccel dxva2 -hwaccel_output_format dxva2_vld -fflags nobuffer -flags low_delay -i http:///example.com -c:v h264_qsv -g 50 -bf 0 -profile:v high -level:v 4.1 -async_depth:v 1 -an -vf \"hwmap=derive_device=qsv,format=qsv\" {OUT}"),
        ),
        (
            "http:///example.com#video=h264#hardware=videotoolbox",
            format!("ffmpeg -hide_banner -hwaccel videotoolbox -hwaccel_output_format videotoolbox_vld -fflags nobuffer -flags low_delay -i http:///example.com -c:v h264_videotoolbox -g 50 -bf 0 -profile:v high -level:v 4.1 -an {OUT}"),
        ),
        // Auto engine (go2rtc probes encoders): see hardware_without_its_device_encodes_in_software.
    ];
    for (source, expect) in cases {
        assert_eq!(build(source), expect, "{source}");
    }
}

#[test]
fn drawtext() {
    let ts = r"text='%{localtime\:%Y-%m-%d %X}'";
    let cases = [
        (
            "http:///example.com#video=h264#drawtext=fontsize=12",
            format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http:///example.com {H264} -an -vf \"drawtext=fontsize=12:{ts}\" {OUT}"),
        ),
        (
            "http:///example.com#video=h264#width=640#drawtext=fontsize=12",
            format!("ffmpeg -hide_banner -fflags nobuffer -flags low_delay -i http:///example.com {H264} -an -vf \"scale=640:-1,drawtext=fontsize=12:{ts}\" {OUT}"),
        ),
        (
            "http:///example.com#video=h264#width=640#drawtext=fontsize=12#hardware=vaapi",
            format!("ffmpeg -hide_banner -hwaccel vaapi -hwaccel_output_format nv12 -hwaccel_flags allow_profile_mismatch -fflags nobuffer -flags low_delay -i http:///example.com -c:v h264_vaapi -g 50 -bf 0 -profile:v high -level:v 4.1 -sei:v 0 -an -vf \"scale=640:-1,drawtext=fontsize=12:{ts},hwupload\" {OUT}"),
        ),
    ];
    for (source, expect) in cases {
        assert_eq!(build(source), expect, "{source}");
    }
}

#[test]
fn config_templates_override_and_extend() {
    let cfg = crate::config::FfmpegConfig {
        bin: "/opt/ffmpeg".into(),
        templates: vec![
            ("h264".into(), "-codec:v libx264 -g:v 30".into()),
            ("mycodec".into(), "-c:v libvpx".into()),
            ("myinput".into(), "-fflags nobuffer -i {input}".into()),
            ("myraw".into(), "-ss 00:00:20".into()),
        ],
    };
    let t = Templates::from_config(&cfg);
    assert_eq!(
        build_with("/x.mp4#video=h264", &t),
        format!("/opt/ffmpeg -hide_banner -re -i /x.mp4 -codec:v libx264 -g:v 30 -an {OUT}")
    );
    assert_eq!(
        build_with("/x.mp4#video=mycodec#input=myinput#raw=myraw", &t),
        format!("/opt/ffmpeg -hide_banner -fflags nobuffer -i /x.mp4 -ss 00:00:20 -c:v libvpx -an {OUT}")
    );
    // Raw codec args when no template has that name.
    assert_eq!(build("/x.mp4#audio=-c:a flac"), format!("ffmpeg -hide_banner -re -i /x.mp4 -c:a flac -vn {OUT}"));
}

#[test]
fn errors() {
    let env = BuildEnv { is_stream: &|_| true, rtsp_base: None, device_exists: &|_| true };
    assert!(parse_args("cam#video=h264", &Templates::default(), &env).unwrap_err().contains("RTSP server is disabled"));
    let env = BuildEnv { is_stream: &|_| false, rtsp_base: None, device_exists: &|_| true };
    assert!(parse_args("", &Templates::default(), &env).is_err());
    assert!(parse_args("virtual?video=testsrc", &Templates::default(), &env)
        .unwrap_err()
        .contains("unsupported input"));
    assert!(parse_args("device?x=1", &Templates::default(), &env).is_err());
}

#[test]
fn built_commands_split_like_go2rtc() {
    let line = build("http:///example.com#video=h264#width=640#drawtext=fontsize=12");
    let argv = crate::sources::exec::quote_split(&line);
    let vf = argv.iter().position(|a| a == "-vf").unwrap();
    assert_eq!(argv[vf + 1], r"scale=640:-1,drawtext=fontsize=12:text='%{localtime\:%Y-%m-%d %X}'");
    assert_eq!(argv[vf + 2], "-user_agent");
    assert_eq!(argv.last().unwrap(), "{output}");
}

#[test]
fn hardware_without_its_device_encodes_in_software() {
    let none = BuildEnv { is_stream: &|_| false, rtsp_base: None, device_exists: &|_| false };
    let t = Templates::default();
    for source in
        ["rtsp://cam/x#video=h264#hardware", "rtsp://cam/x#video=h264#hardware=vaapi", "rtsp://cam/x#video=h264#hw"]
    {
        let args = parse_args(source, &t, &none).unwrap();
        assert!(args.to_string().contains("-c:v libx264"), "{source}: {args}");
        assert!(!args.to_string().contains("vaapi"), "{source}: {args}");
        let why = args.software_fallback.unwrap_or_default();
        assert!(why.contains("encoding in software"), "{source}: {why}");
    }
    let vaapi = parse_args("rtsp://cam/x#video=h264#hardware=vaapi", &t, &none).unwrap();
    assert!(vaapi.software_fallback.unwrap().contains("no /dev/dri/renderD128"));
    // Engines without a device file to check are used as asked.
    let videotoolbox = parse_args("rtsp://cam/x#video=h264#hardware=videotoolbox", &t, &none).unwrap();
    assert!(videotoolbox.software_fallback.is_none() && videotoolbox.to_string().contains("h264_videotoolbox"));

    // Auto picks the engine whose device is there.
    let nvidia = BuildEnv { is_stream: &|_| false, rtsp_base: None, device_exists: &|d| d == "/dev/nvidia0" };
    let args = parse_args("rtsp://cam/x#video=h264#hardware", &t, &nvidia).unwrap();
    assert!(args.software_fallback.is_none());
    assert!(args.to_string().contains("h264_nvenc"), "{args}");
}
