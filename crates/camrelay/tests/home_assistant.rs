//! Home Assistant runs camrelay as its managed go2rtc: `tests/fixtures/home_assistant.py` does what
//! Home Assistant's `go2rtc` integration does (start the binary with its config, wait for the boot
//! line on stdout, check the version, add a camera, WebRTC offers over JSON and the WebSocket with
//! the TCP-only listener, a snapshot, preload across a camera reboot, SIGTERM), with the real
//! `go2rtc-client` package, against GStreamer's RTSP server as the camera.
//!
//! Needs the Python 3.12 virtualenv `target/ha-venv` that `scripts/test.sh` makes
//! (`tests/fixtures/ha-requirements.txt`), or `CAMRELAY_HA_PYTHON` naming a Python that has those
//! packages. Uses Home Assistant's fixed ports (11984, 18554, 18555), so both configs run in one test.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn run(mode: &str) -> String {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = temp_dir(&format!("ha-{mode}"));
    let out = run_with_timeout(
        Command::new(ha_python())
            .arg(fixtures.join("home_assistant.py"))
            .arg(env!("CARGO_BIN_EXE_camrelay"))
            .arg(fixtures.join("gst_camera.py"))
            .arg(&dir)
            .arg(mode)
            .env("PYTHONWARNINGS", "ignore::DeprecationWarning"),
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "home_assistant.py {mode} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    stdout
}

#[test]
fn home_assistant_runs_camrelay_as_its_go2rtc() {
    for mode in ["classic", "managed"] {
        let stdout = run(mode);
        println!("{stdout}");
        let last = stdout.lines().last().unwrap_or("");
        assert!(last.starts_with(&format!("HOME ASSISTANT OK mode={mode} version=1.9.13")), "{stdout}");
        assert!(stdout.contains("snapshot 160x120"), "{stdout}");
        assert!(stdout.contains("preload resumed"), "{stdout}");
    }
}
