//! Two-way audio over WebRTC into a camera we did not write (issue 20): GStreamer's RTSP server with an
//! ONVIF backchannel (`tests/fixtures/gst_camera.py --backchannel`, PCMA or PCMU at 8 kHz) is the
//! camera, and camrelay pulls it as `rtsp://`. A WebRTC microphone sends a 440 Hz tone to camrelay's
//! `/api/webrtc?src=cam`: aiortc (`tests/fixtures/two_way_client.py`) offering only Opus, so camrelay
//! transcodes it in-process to the camera's G.711; or offering G.711 too, so it passes through.
//! The camera decodes what it receives with GStreamer's alawdec/mulawdec and writes the samples to a
//! file; the test checks that they are the tone (its pitch, from a DFT and from zero crossings), at
//! the camera's rate (8 kHz, or 16 kHz for one camera: a wrong rate moves the pitch), about as long as
//! what was sent, without holes.
//! Chromium's fake microphone, through the player page and through a getUserMedia page with go2rtc's
//! web UI offer, is `chromium_fake_microphone_reaches_pcma_and_pcmu_cameras` (`tests/browser/two_way.mjs`).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TONE_HZ: f64 = 440.0;
const TONE_SECONDS: f64 = 4.0;
/// The client's tone: a quarter of full scale, so an RMS of 8192 / √2 (5793).
const TONE_RMS: f64 = 8192.0 / std::f64::consts::SQRT_2;
/// What aiortc's Opus encoder makes of it: it upmixes the mono tone to stereo at -3 dB a channel
/// (libswresample's default) before libopus, so its own decoder gets an RMS of 4096 back.
const AIORTC_OPUS_RMS: f64 = TONE_RMS / std::f64::consts::SQRT_2;

/// What the camera heard: the decoded 8 kHz samples, measured.
#[derive(Debug)]
struct Heard {
    /// Everything the camera received.
    total_seconds: f64,
    /// From the first to the last loud sample.
    tone_seconds: f64,
    /// The strongest frequency (a DFT of the middle second, 0.1 Hz steps).
    peak_hz: f64,
    /// Half the zero crossings a second over the tone.
    crossing_hz: f64,
    rms: f64,
    /// 20 ms blocks inside the tone far quieter than the rest (lost or concealed audio).
    quiet_blocks: usize,
    blocks: usize,
}

fn read_pcm(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.chunks_exact(2).map(|b| f64::from(i16::from_le_bytes([b[0], b[1]]))).collect()
}

/// The magnitude of `x` (sampled at `rate`) at `hz`, by Goertzel's recurrence.
fn magnitude(x: &[f64], hz: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).sqrt()
}

/// The strongest frequency of `x` (sampled at `rate`) between 50 Hz and 3950 Hz: 5 Hz steps, then
/// 0.1 Hz around the best.
fn peak_frequency(x: &[f64], rate: f64) -> f64 {
    let best = |from: f64, to: f64, step: f64| {
        let mut f = from;
        let (mut best_f, mut best_m) = (from, -1.0);
        while f <= to {
            let m = magnitude(x, f, rate);
            if m > best_m {
                (best_f, best_m) = (f, m);
            }
            f += step;
        }
        best_f
    };
    let coarse = best(50.0, 3950.0, 5.0);
    best(coarse - 5.0, coarse + 5.0, 0.1)
}

/// What a camera heard at `rate` samples a second.
fn analyse(pcm: &[f64], rate: f64) -> Heard {
    let loud = |v: &f64| v.abs() > 1000.0;
    let first = pcm.iter().position(loud).unwrap_or(0);
    let last = pcm.iter().rposition(loud).unwrap_or(0);
    let tone = &pcm[first..=last.max(first)];
    let rms = (tone.iter().map(|v| v * v).sum::<f64>() / tone.len().max(1) as f64).sqrt();
    let middle = tone.len() / 2;
    let half = (rate / 2.0) as usize;
    let window = &tone[middle.saturating_sub(half)..(middle + half).min(tone.len())];
    let crossings = tone.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
    let blocks: Vec<f64> = tone
        .chunks((rate / 50.0) as usize)
        .map(|b| (b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64).sqrt())
        .collect();
    Heard {
        total_seconds: pcm.len() as f64 / rate,
        tone_seconds: tone.len() as f64 / rate,
        peak_hz: peak_frequency(window, rate),
        crossing_hz: crossings as f64 / 2.0 / (tone.len().max(1) as f64 / rate),
        rms,
        quiet_blocks: blocks.iter().filter(|b| **b < rms / 4.0).count(),
        blocks: blocks.len(),
    }
}

/// CPU seconds (user + system) the process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    fields.iter().sum::<u64>() as f64 / 100.0
}

/// A GStreamer ONVIF camera with a `codec` backchannel at `rate` Hz and camrelay pulling it as `cam`;
/// the camera writes the G.711 bytes it receives to `raw` and GStreamer's decoding of them to `pcm`.
struct Setup {
    server: Server,
    _camera: GstCamera,
    dir: PathBuf,
    raw: PathBuf,
    pcm: PathBuf,
    rate: f64,
}

fn setup(codec: &str, rate: u32) -> Setup {
    let dir = temp_dir(&format!("two-way-{codec}"));
    let (raw, pcm) = (dir.join(format!("received.{codec}")), dir.join("received.s16le"));
    let port = free_port();
    let camera = GstCamera::start(
        port,
        &[
            "--backchannel",
            raw.to_str().unwrap(),
            "--backchannel-codec",
            codec,
            "--backchannel-rate",
            &rate.to_string(),
            "--backchannel-pcm",
            pcm.to_str().unwrap(),
        ],
    );
    let server =
        Server::start(&format!("webrtc:\n  listen: 127.0.0.1:0\nstreams:\n  cam: rtsp://127.0.0.1:{port}/test\n"));
    assert!(server.wait_log("[webrtc] listen addr=127.0.0.1:", Duration::from_secs(30)), "{}", server.log());
    Setup { server, _camera: camera, dir, raw, pcm, rate: f64::from(rate) }
}

/// Waits until the camera's file holds at least `seconds` of samples and stops growing.
fn wait_received(s: &Setup, seconds: f64) -> Vec<f64> {
    let size = || std::fs::metadata(&s.pcm).map(|m| m.len()).unwrap_or(0);
    let bytes_per_second = s.rate * 2.0;
    let want = (seconds * bytes_per_second) as u64;
    assert!(
        wait_until(Duration::from_secs(30), || size() >= want),
        "the camera received {:.2} s of audio, want {seconds:.2} s; log:\n{}",
        size() as f64 / bytes_per_second,
        s.server.log()
    );
    // The session is over (the client closed): the file stops growing once the last packets are in.
    let mut last = size();
    let settled = wait_until(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(300));
        let now = size();
        std::mem::replace(&mut last, now) == now
    });
    assert!(settled, "the camera kept receiving audio after the microphone stopped");
    read_pcm(&s.pcm)
}

/// Runs the aiortc microphone on `cam`; returns its report.
fn aiortc_microphone(server: &Server, flags: &[&str]) -> serde_json::Value {
    aiortc_microphone_tone(server, TONE_HZ, flags)
}

/// [`aiortc_microphone`] sending a tone of `hz`.
fn aiortc_microphone_tone(server: &Server, hz: f64, flags: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/two_way_client.py");
    let url = server.api_url("/api/webrtc?src=cam");
    let out = run_with_timeout(
        Command::new(python()).arg(script).arg(&url).arg(TONE_SECONDS.to_string()).arg(hz.to_string()).args(flags),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'aiortc'"),
        "aiortc is missing: run `{} -m pip install aiortc`",
        python()
    );
    assert!(out.status.success(), "two_way_client failed: {stderr}\nserver log:\n{}", server.log());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client output {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The checks every aiortc case makes on what the camera heard.
fn assert_tone(case: &str, s: &Setup, sent: f64, level: f64, cpu: f64, wall: f64) {
    let pcm = wait_received(s, sent * 0.9);
    let raw = std::fs::metadata(&s.raw).map(|m| m.len()).unwrap_or(0);
    let h = analyse(&pcm, s.rate);
    eprintln!(
        "{case}: sent {sent:.2} s of {TONE_HZ} Hz; the camera received {} Hz audio, {:.2} s ({raw} G.711 bytes), tone {:.2} s, \
         peak {:.1} Hz (DFT), {:.1} Hz (zero crossings), RMS {:.0} (sent {level:.0}), {} of {} 20 ms blocks quiet; \
         camrelay used {:.2} CPU s in {:.2} s ({:.1} % of a core, video and RTSP included)",
        s.rate,
        h.total_seconds,
        h.tone_seconds,
        h.peak_hz,
        h.crossing_hz,
        h.rms,
        h.quiet_blocks,
        h.blocks,
        cpu,
        wall,
        100.0 * cpu / wall
    );
    // G.711 is one byte a sample: GStreamer decoded every byte the camera got into one 8 kHz sample.
    assert_eq!(raw, pcm.len() as u64, "{case}: {raw} G.711 bytes, {} samples", pcm.len());
    assert!((h.total_seconds - sent).abs() <= 0.3, "{case}: sent {sent} s, the camera received {h:?}");
    assert!((h.tone_seconds - sent).abs() <= 0.3, "{case}: sent {sent} s, the camera received {h:?}");
    assert!((h.peak_hz - TONE_HZ).abs() <= 2.0, "{case}: not the {TONE_HZ} Hz tone: {h:?}");
    assert!((h.crossing_hz - TONE_HZ).abs() <= 5.0, "{case}: not the {TONE_HZ} Hz tone: {h:?}");
    assert!(h.rms > level * 0.8 && h.rms < level * 1.2, "{case}: level {h:?}, sent RMS {level:.0}");
    assert!(h.quiet_blocks * 50 <= h.blocks, "{case}: holes in the audio: {h:?}");
}

/// `flags` for the client; `codec` is the camera's backchannel; `mic` the codec the client must send with.
fn aiortc_case(case: &str, (codec, rate): (&str, u32), flags: &[&str], mic: &str, transcoded: bool) {
    let s = setup(codec, rate);
    let (cpu0, t0) = (cpu_seconds(s.server.pid()), Instant::now());
    let report = aiortc_microphone(&s.server, flags);
    let (cpu, wall) = (cpu_seconds(s.server.pid()) - cpu0, t0.elapsed().as_secs_f64());
    eprintln!("{case}: client {report}");
    assert_eq!(report["mic_codec"], mic, "{case}: {report}");
    assert!(report["video_frames"].as_u64().unwrap_or(0) >= 25, "{case}: the same session plays video: {report}");
    let sent = report["sent_seconds"].as_f64().unwrap_or(0.0);
    assert!((sent - TONE_SECONDS).abs() < 0.05, "{report}");
    let log = s.server.log();
    let line = log.lines().find(|l| l.contains("two-way audio: the peer's microphone plays into the backchannel"));
    let line = line.unwrap_or_else(|| panic!("{case}: no two-way audio; log:\n{log}"));
    let upper = codec.to_ascii_uppercase();
    assert!(line.contains(&format!("codec={upper}")), "{case}: {line}");
    assert_eq!(line.contains("transcoded_from=Some(\"OPUS\")"), transcoded, "{case}: {line}");
    if flags.contains(&"split") || flags.contains(&"mic-first") {
        // The camera's own sound plays on the recvonly m-line meanwhile, not on the microphone's.
        assert!(report["audio_seconds"].as_f64().unwrap_or(0.0) >= 2.0, "{case}: the camera's sound: {report}");
        assert_eq!(report["answer_audio"].as_array().map(Vec::len), Some(2), "{case}: {report}");
    }
    let level = if transcoded { AIORTC_OPUS_RMS } else { TONE_RMS };
    assert_tone(case, &s, sent, level, cpu, wall);
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Two microphones at once into one camera (440 Hz and 660 Hz, 4 s each, started together): one
/// speaks at a time, the first holding the backchannel while it sends, so the camera hears one clean
/// tone. Both forwarded, it got both streams' packets interleaved: 8 s of noise for 4 s of talk.
#[test]
fn two_microphones_at_once_one_speaks_at_a_time() {
    let s = setup("pcma", 8000);
    let server = &s.server;
    let reports = std::thread::scope(|sc| {
        let low = sc.spawn(|| aiortc_microphone_tone(server, TONE_HZ, &["opus"]));
        let high = sc.spawn(|| aiortc_microphone_tone(server, 660.0, &["opus"]));
        [low.join().unwrap(), high.join().unwrap()]
    });
    for r in &reports {
        let sent = r["sent_seconds"].as_f64().unwrap_or(0.0);
        assert!((sent - TONE_SECONDS).abs() < 0.05, "{r}");
    }
    let pcm = wait_received(&s, TONE_SECONDS * 0.9);
    let all = analyse(&pcm, s.rate);
    let first = analyse(&pcm[..(3.0 * s.rate) as usize], s.rate);
    let tone = if (first.peak_hz - TONE_HZ).abs() < (first.peak_hz - 660.0).abs() { TONE_HZ } else { 660.0 };
    eprintln!(
        "two microphones, 4 s each at once: the camera received {:.2} s; its first 3 s peak at {:.1} Hz (DFT), {:.1} Hz (zero crossings): the {tone} Hz microphone",
        all.total_seconds, first.peak_hz, first.crossing_hz
    );
    assert!(all.total_seconds < 6.0, "both microphones reached the camera: {all:?}");
    assert!((first.peak_hz - tone).abs() <= 2.0, "not one clean tone: {first:?}");
    assert!((first.crossing_hz - tone).abs() <= 5.0, "not one clean tone: {first:?}");
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// An Opus-only microphone on one `sendrecv` audio m-line (a browser's usual offer with the codec
/// choice narrowed): camrelay answers Opus and transcodes it to the camera's PCMA.
#[test]
fn aiortc_opus_microphone_is_transcoded_for_a_pcma_camera() {
    aiortc_case("opus->pcma sendrecv", ("pcma", 8000), &["opus"], "audio/opus", true);
}

/// go2rtc's web UI's offer shape: a `recvonly` audio m-line for the camera's sound and a `sendonly` one
/// for the microphone, Opus only, into a PCMU camera.
#[test]
fn aiortc_opus_microphone_on_its_own_m_line_is_transcoded_for_a_pcmu_camera() {
    aiortc_case("opus->pcmu recvonly+sendonly", ("pcmu", 8000), &["opus", "split"], "audio/opus", true);
}

/// The same with the microphone's m-line before the one for the camera's sound: the camera's audio
/// goes out on the `recvonly` one, never on the microphone's.
#[test]
fn aiortc_opus_microphone_listed_first_is_transcoded_for_a_pcmu_camera() {
    aiortc_case("opus->pcmu sendonly+recvonly", ("pcmu", 8000), &["opus", "mic-first"], "audio/opus", true);
}

/// A camera whose backchannel is PCMA at 16 kHz (a dynamic payload type): libopus decodes the
/// microphone straight to 16 kHz, and the camera hears the tone at its own rate.
#[test]
fn aiortc_opus_microphone_is_transcoded_for_a_16_khz_pcma_camera() {
    aiortc_case("opus->pcma/16000 sendrecv", ("pcma", 16000), &["opus"], "audio/opus", true);
}

/// A microphone that offers G.711 too: the answer puts the camera's codec first and the client's own
/// PCMA encoder is heard as it is (no transcoding).
#[test]
fn aiortc_g711_microphone_passes_through_to_a_pcma_camera() {
    aiortc_case("pcma passthrough", ("pcma", 8000), &[], "audio/PCMA", false);
}

/// `[0.50, 0.51]`: seconds to print.
fn list(v: &[f64]) -> String {
    format!("[{}]", v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", "))
}

/// Beeps of Chromium's fake microphone in what a camera heard: their onsets (s) and lengths (s), from
/// 10 ms blocks louder than an RMS of 1000.
fn beeps(pcm: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let loud: Vec<bool> =
        pcm.chunks(80).map(|b| (b.iter().map(|v| v * v).sum::<f64>() / b.len() as f64).sqrt() > 1000.0).collect();
    let (mut onsets, mut lengths) = (Vec::new(), Vec::new());
    let mut run = 0usize;
    for (i, l) in loud.iter().chain([&false]).enumerate() {
        if *l {
            if run == 0 {
                onsets.push(i as f64 * 0.01);
            }
            run += 1;
        } else if run > 0 {
            lengths.push(run as f64 * 0.01);
            run = 0;
        }
    }
    (onsets, lengths)
}

/// Chromium's fake microphone (`--use-fake-device-for-media-stream`: a short beep every half second)
/// into two GStreamer ONVIF cameras through camrelay, inside a network namespace
/// (`tests/browser/two_way.mjs`): the player page's microphone button on the PCMA camera (Chromium
/// offers Opus, PCMA, PCMU...: the answer puts PCMA first and Chromium encodes PCMA itself), and
/// go2rtc's web UI offer (video and audio `recvonly`, the microphone `sendonly` offering only Opus)
/// on the PCMU camera, transcoded by camrelay. Each camera's decoded audio must be the beeps, periodic,
/// as long as Chromium sent, and the transcoded beep as high as the passed-through one.
#[test]
fn chromium_fake_microphone_reaches_pcma_and_pcmu_cameras() {
    let dir = temp_dir("two-way-chromium");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gst_camera.py");
    let v = run_browser_script(
        BrowserNet::Veth,
        "two_way.mjs",
        &[env!("CARGO_BIN_EXE_camrelay"), script, dir.to_str().unwrap(), "4"],
        Duration::from_secs(150),
    );
    assert!(v["error"].is_null(), "{v}");
    let mut pitch = Vec::new();
    for (case, camera, mic_codec, transcoded) in
        [("player", "pcma", "audio/PCMA", false), ("opus", "pcmu", "audio/opus", true)]
    {
        let r = &v[case];
        eprintln!("chromium {case}: {r}");
        assert_eq!(r["connection"], "connected", "{case}: {r}");
        assert_eq!(r["mic"]["codec"], mic_codec, "{case}: {r}");
        assert_eq!(r["settled"], true, "{case}: the camera kept receiving after the page closed: {r}");
        assert!(r["video_frames"].as_u64().unwrap_or(0) > 50, "{case}: the same session plays video: {r}");
        assert!(r["camera_audio"]["samples"].as_u64().unwrap_or(0) > 16_000, "{case}: the camera's sound: {r}");
        let line = format!("codec={}", camera.to_ascii_uppercase());
        let logged = v["log"].as_array().into_iter().flatten().filter_map(|l| l.as_str()).find(|l| l.contains(&line));
        let logged = logged.unwrap_or_else(|| panic!("{case}: no two-way audio into {camera}: {}", v["log"]));
        assert_eq!(logged.contains("transcoded_from=Some(\"OPUS\")"), transcoded, "{case}: {logged}");

        let pcm = read_pcm(&dir.join(format!("{camera}.s16le")));
        let raw = std::fs::metadata(dir.join(format!("{camera}.g711"))).map(|m| m.len()).unwrap_or(0);
        assert_eq!(raw, pcm.len() as u64, "{case}: one G.711 byte a sample");
        // Chromium sends 20 ms packets: what it counted sending is what the camera should have.
        let sent = r["mic"]["packets"].as_f64().unwrap_or(0.0) * 0.02;
        let received = pcm.len() as f64 / 8000.0;
        let (onsets, lengths) = beeps(&pcm);
        let intervals: Vec<f64> = onsets.windows(2).map(|w| w[1] - w[0]).collect();
        let loud: Vec<f64> = pcm.iter().copied().filter(|v| v.abs() > 1000.0).collect();
        let rms = (loud.iter().map(|v| v * v).sum::<f64>() / loud.len().max(1) as f64).sqrt();
        let middle = pcm.len() / 2;
        let peak = peak_frequency(&pcm[middle.saturating_sub(4000)..(middle + 4000).min(pcm.len())], 8000.0);
        eprintln!(
            "chromium {case} -> {camera}: Chromium sent {sent:.2} s ({mic_codec}), the camera received {received:.2} s \
             ({raw} G.711 bytes); {} beeps {} s apart, {} s long; peak {peak:.1} Hz; RMS of the beeps {rms:.0}",
            onsets.len(),
            list(&intervals),
            list(&lengths)
        );
        assert!(sent >= 3.5, "{case}: Chromium sent {sent} s: {r}");
        assert!(
            (received - sent).abs() <= 0.3,
            "{case}: Chromium sent {sent:.2} s, the camera received {received:.2} s"
        );
        // The fake microphone beeps every half second: one beep for each, evenly spaced, short.
        assert!(onsets.len() + 1 >= (received / 0.5) as usize, "{case}: {} beeps in {received:.2} s", onsets.len());
        assert!(intervals.iter().all(|i| (i - 0.5).abs() <= 0.05), "{case}: beeps not periodic: {intervals:?}");
        assert!(lengths.iter().all(|l| *l <= 0.15), "{case}: not beeps: {lengths:?}");
        assert!(rms > 3000.0, "{case}: beeps too quiet: RMS {rms:.0}");
        pitch.push(peak);
    }
    // The beep through camrelay's Opus → PCMU transcoder has the pitch it has passed through as PCMA.
    assert!(
        (pitch[0] - pitch[1]).abs() <= 10.0,
        "pitch: passed through {:.1} Hz, transcoded {:.1} Hz",
        pitch[0],
        pitch[1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
