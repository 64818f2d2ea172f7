//! Two-way audio through the API: `POST /api/streams?dst=&src=` plays a file (transcoded by ffmpeg to
//! PCMA) into an exec source's backchannel, which writes it to a file.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn post_plays_audio_into_an_exec_backchannel_and_empty_src_stops_it() {
    let dir = temp_dir("twoway");
    let wav = dir.join("tone.wav");
    let out = dir.join("speaker.alaw");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=16000:duration=30"])
        .arg(&wav)
        .status()
        .unwrap();
    assert!(status.success());
    // go2rtc splits exec: commands on spaces, keeping "double-quoted" words together.
    let srv = Server::start(&format!("streams:\n  speaker: 'exec:sh -c \"cat > {}\"#backchannel=1'\n", out.display()));
    let src = format!("ffmpeg:{}%23audio=pcma%23input=file", wav.display());
    let r = srv.http("POST", &format!("/api/streams?dst=speaker&src={src}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let medias = r.json()["producers"][0]["medias"].to_string();
    assert!(medias.contains("audio, sendonly, PCMA"), "{medias}");
    let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    // PCMA is 8000 bytes a second: wait for a second of audio to land in the file.
    assert!(
        wait_until(Duration::from_secs(30), || size() >= 8000),
        "backchannel wrote {} bytes; log:\n{}",
        size(),
        srv.log()
    );
    let bytes = std::fs::read(&out).unwrap();
    let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
    // A 500 Hz tone sampled at 8 kHz repeats every 16 samples: about a dozen distinct A-law codes.
    assert!((8..=16).contains(&distinct), "a tone, not silence or noise: {distinct} distinct A-law values");

    assert_eq!(srv.http("POST", "/api/streams?dst=speaker&src=").status, 200);
    // Stopped: the file stops growing.
    let settled = wait_until(Duration::from_secs(30), || {
        let a = size();
        std::thread::sleep(Duration::from_millis(400));
        size() == a
    });
    assert!(settled, "playback stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn codec_mismatch_names_both_sides() {
    let srv = Server::start("streams:\n  speaker: 'exec:sh -c \"cat > /dev/null\"#backchannel=1'\n");
    let r = srv.http("POST", "/api/streams?dst=speaker&src=demo:clip");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("codecs not matched: audio:PCMA => video:H264, audio:AAC"), "{}", r.text());
}
