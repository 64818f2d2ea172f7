//! Audio in browsers over MSE and HLS (issue 20): headless Chromium plays each camera codec combination
//! — H.264 with AAC 44.1 kHz, PCMA 8 kHz, PCMU 8 kHz and PCMA 16 kHz, ffmpeg publishing a 440 Hz tone
//! over RTSP — through go2rtc's WebSocket `mse`, `<video src=/api/stream.mp4?mp4=flac>`, hls.js on
//! `/api/stream.m3u8?mp4=flac` (fMP4) and `?video=h264&audio=aac,pcma,pcmu` (MPEG-TS; G.711 gets fMP4
//! segments), hls.js in low-latency mode on MediaMTX's `/PATH/index.m3u8` (lowLatency variant) and the
//! web UI's player page (`stream.html?mode=mse`, `mode=hls`) and go2rtc's WebSocket `hls` message with
//! the browser's codecs (its player's way on iPhones), and shows video frames of the right size,
//! audio bytes decoded (`webkitAudioDecodedByteCount`) and the tone itself (a WebAudio AnalyserNode on
//! the media element: the loudest frequency is 440 Hz). G.711 reaches MSE and HLS as FLAC in fMP4.
//! ffprobe and ffmpeg read the same HTTP URLs and decode their audio. H.265 + AAC: the server answers a
//! browser listing `hvc1` with `hvc1.*,mp4a.40.2` and streams it, ffmpeg decodes it from `stream.mp4`;
//! this Chromium's MSE has no H.265 decoder (`MediaSource.isTypeSupported` is false), which the test
//! prints (where it has one, the stream is played and checked as the others). The browser side is
//! `tests/browser/browser_codecs.mjs`; it runs in a fresh network namespace with only loopback.

mod common;

use common::{run_browser_script, BrowserNet};
use std::time::Duration;

const MODES: [&str; 8] = ["mse", "mp4", "hls_fmp4", "hls_ts", "llhls", "ws_hls", "ui_mse", "ui_hls"];
/// Combination, the audio codec ffprobe reports, its rate.
const COMBOS: [(&str, &str, &str); 4] =
    [("aac", "aac", "44100"), ("pcma", "flac", "8000"), ("pcmu", "flac", "8000"), ("pcma16k", "flac", "16000")];

#[test]
fn chromium_plays_every_camera_audio_codec_over_mse_and_hls() {
    let v = run_browser_script(
        BrowserNet::Loopback,
        "browser_codecs.mjs",
        &[env!("CARGO_BIN_EXE_camrelay")],
        Duration::from_secs(420),
    );
    assert!(v["error"].is_null(), "{v}");
    let support = &v["support"];
    let h265 = support["hvc1.1.6.L153.B0"].as_bool().unwrap_or(false)
        || support["hev1.1.6.L153.B0"].as_bool().unwrap_or(false);
    println!(
        "H.265 over MSE: {}",
        if h265 {
            "this Chromium's MSE takes hvc1/hev1: H.265+AAC played over MSE below"
        } else {
            "this Chromium decodes no H.265 (MediaSource.isTypeSupported(hvc1/hev1) is false): H.265+AAC not played"
        }
    );
    println!(
        "{:<9} {:<8} {:<5} {:>7} {:>8} {:>11} {:>8} {:>6}  ffmpeg (audio, frames)",
        "mode", "combo", "cont", "frames", "size", "audio B/3s", "tone Hz", "rms"
    );
    let mut failures = Vec::new();
    for mode in MODES {
        for (combo, ff_codec, ff_rate) in COMBOS {
            let r = &v["results"][mode][combo];
            let ff = &v["ffmpeg"][mode][combo];
            let frames = r["frames"].as_u64().unwrap_or(0);
            let listening = r["framesWhileListening"].as_u64().unwrap_or(0);
            let size = (r["width"].as_u64().unwrap_or(0), r["height"].as_u64().unwrap_or(0));
            let audio = r["audioBytesWhileListening"].as_u64().unwrap_or(0);
            let tone = r["toneHz"].as_f64().unwrap_or(0.0);
            let rms = r["rms"].as_f64().unwrap_or(0.0);
            let container = r["container"].as_str().unwrap_or("?");
            println!(
                "{mode:<9} {combo:<8} {container:<5} {frames:>7} {:>8} {audio:>11} {tone:>8.1} {rms:>6.3}  {}",
                format!("{}x{}", size.0, size.1),
                if ff.is_null() { "-".to_string() } else { format!("{}, {}", ff["audio"], ff["audioFrames"]) }
            );
            let mut check = |ok: bool, what: &str| {
                if !ok {
                    failures.push(format!("{mode} {combo}: {what}: {r}"));
                }
            };
            check(r["error"].is_null(), "page error");
            let fatal: Vec<&str> = r["errors"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .filter_map(|e| e.as_str())
                        .filter(|e| e.contains("fatal") || e.contains("SourceBuffer") || e.starts_with("video:"))
                        .collect()
                })
                .unwrap_or_default();
            check(fatal.is_empty(), "fatal player errors");
            check(frames >= 50 && listening >= 20, "video frames decoded");
            check(size == (320, 240), "picture size");
            // 3 s of AAC 64 kb/s is ~24 kB, of FLAC at 8 kHz ~48 kB.
            check(audio > 5_000, "audio bytes decoded while listening");
            // The analyser's bins are 48000/8192 ≈ 5.9 Hz wide; ffmpeg's sine is at -18 dBFS (RMS ≈ 0.09).
            check((tone - 440.0).abs() < 12.0, "the 440 Hz tone");
            check(rms > 0.03, "audio level");
            if mode == "ws_hls" {
                // go2rtc's WebSocket `hls` with the browser's codecs: fMP4 (AAC, or FLAC: `flac` listed).
                check(container == "fmp4", "segment container");
            }
            if mode == "hls_ts" {
                // MPEG-TS carries AAC; G.711 goes in fMP4 segments (as FLAC) on the same URL.
                check(container == if combo == "aac" { "ts" } else { "fmp4" }, "segment container");
            }
            if !matches!(mode, "mse" | "ws_hls" | "ui_mse" | "ui_hls") {
                let want = format!("{ff_codec} {ff_rate}");
                if ff["audio"].as_str() != Some(want.as_str()) {
                    failures.push(format!("{mode} {combo}: ffprobe audio {} (want {want}): {ff}", ff["audio"]));
                }
                if ff["video"].as_str() != Some("h264 320x240") {
                    failures.push(format!("{mode} {combo}: ffprobe video: {ff}"));
                }
                if ff["audioFrames"].as_u64().unwrap_or(0) < 50 {
                    failures.push(format!("{mode} {combo}: ffmpeg decoded no 50 audio frames: {ff}"));
                }
            }
        }
    }
    // go2rtc's URL with `&ll`: LL-HLS with the same audio as MediaMTX's URL (ffmpeg).
    for (combo, ff_codec, ff_rate) in COMBOS {
        let ff = &v["ffmpeg"]["ll_api"][combo];
        println!("ll_api    {combo:<8} ffmpeg {}, {}", ff["audio"], ff["audioFrames"]);
        let want = format!("{ff_codec} {ff_rate}");
        if ff["audio"].as_str() != Some(want.as_str()) || ff["audioFrames"].as_u64() < Some(50) {
            failures.push(format!("ll_api {combo}: ffmpeg on /api/stream.m3u8?src={combo}&ll (want {want}): {ff}"));
        }
    }
    // H.265 + AAC: the server answers a browser listing hvc1 with H.265 and AAC in fMP4 and streams it;
    // ffmpeg decodes `stream.mp4`; Chromium plays it only where its MSE takes the type.
    let h = &v["h265"];
    println!(
        "H.265+AAC: MSE answer {}, {} bytes in 3 s, playable here: {}; ffmpeg {}",
        h["mime"], h["bytes"], h["supported"], h["ffmpeg"]
    );
    let mime = h["mime"].as_str().unwrap_or("");
    if !(mime.starts_with("video/mp4; codecs=\"hvc1.")
        && mime.ends_with(",mp4a.40.2\"")
        && h["bytes"].as_u64() > Some(10_000))
    {
        failures.push(format!("h265: MSE answer: {h}"));
    }
    let ff = &h["ffmpeg"];
    if ff["video"] != "hevc 320x240" || ff["audio"] != "aac 44100" || ff["audioFrames"].as_u64() < Some(50) {
        failures.push(format!("h265: ffmpeg on stream.mp4: {ff}"));
    }
    if h["supported"] == true {
        let r = &h["mse"];
        println!("H.265+AAC over MSE: {r}");
        let ok = r["frames"].as_u64() >= Some(50)
            && r["width"] == 320
            && r["audioBytesWhileListening"].as_u64() > Some(5_000)
            && (r["toneHz"].as_f64().unwrap_or(0.0) - 440.0).abs() < 12.0;
        if !ok {
            failures.push(format!("h265 mse: {r}"));
        }
    }
    assert!(failures.is_empty(), "{}\nlog: {}", failures.join("\n"), v["log"]);
}
