//! MediaMTX's control API (`/v3`) against its OpenAPI file: camrelay runs a MediaMTX config and a go2rtc
//! config, ffmpeg publishes one stream and reads it, and `tests/fixtures/v3_validate.py` calls every
//! operation of `docs/openapi-v3.yaml` and validates each response with `openapi-core` (a real
//! validator, not hand-written asserts), kicks the RTSP reader, and edits a path.
//!
//! Needs the Python 3.12 virtualenv `target/ha-venv` that `scripts/test.sh` makes
//! (`tests/fixtures/ha-requirements.txt` has `openapi-core`), or `CAMRELAY_HA_PYTHON` naming a Python
//! that has it.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The RTMP listener's address, from its log line.
fn rtmp_addr(srv: &Server) -> std::net::SocketAddr {
    assert!(srv.wait_log("[rtmp] listen addr=", Duration::from_secs(30)), "no rtmp listener; log:\n{}", srv.log());
    let log = srv.log();
    let line = log.lines().find(|l| l.contains("[rtmp] listen addr=")).unwrap();
    line.split("[rtmp] listen addr=").nth(1).unwrap().trim().parse().unwrap()
}

/// Publishes `cam`, starts an RTSP reader of it, and runs the validator; returns its output. With
/// `rtmp`, also publishes `live/rcam` over RTMP and reads it over RTMP, for the `rtmpconns` operations.
fn validate(server: &Server, mediamtx: bool, rtmp: Option<std::net::SocketAddr>) -> String {
    let _publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "320x240", true);
    let ready = wait_until(Duration::from_secs(30), || {
        let r = server.http("GET", "/v3/paths/get/cam");
        r.status == 200 && r.json()["ready"] == true
    });
    assert!(ready, "cam never became ready:\n{}", server.log());
    let _reader = rtsp_reader_for(&server.rtsp_url("cam"), 30);
    let reading = wait_until(Duration::from_secs(30), || {
        let r = server.http("GET", "/v3/rtspsessions/list");
        r.json()["items"].as_array().is_some_and(|items| items.iter().any(|s| s["state"] == "read"))
    });
    assert!(reading, "no RTSP reader session:\n{}", server.log());
    let mut _rtmp_parties = None;
    if let Some(addr) = rtmp {
        let url = format!("rtmp://{addr}/live/rcam");
        let publisher = Publisher::encode("320x240", true, false, &["-t", "60", "-f", "flv", &url]);
        let ready = wait_until(Duration::from_secs(30), || {
            server.http("GET", "/v3/paths/get/live/rcam").json()["ready"] == true
        });
        assert!(ready, "live/rcam never became ready over RTMP:\n{}", server.log());
        let reader = std::thread::spawn(move || {
            run_with_timeout(
                Command::new("ffmpeg").args(["-v", "error", "-i", &url, "-t", "30", "-f", "null", "-"]),
                Duration::from_secs(35),
            )
        });
        let both = wait_until(Duration::from_secs(30), || {
            let items = server.http("GET", "/v3/rtmpconns/list").json()["items"].clone();
            let states: Vec<_> = items.as_array().into_iter().flatten().filter_map(|c| c["state"].as_str()).collect();
            states.contains(&"read") && states.contains(&"publish")
        });
        assert!(both, "no RTMP reader and publisher listed:\n{}", server.log());
        _rtmp_parties = Some((publisher, reader));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(ha_python());
    cmd.arg(root.join("tests/fixtures/v3_validate.py"))
        .arg("--api")
        .arg(server.api_url(""))
        .arg("--spec")
        .arg(root.join("../../docs/openapi-v3.yaml"))
        .arg("--published")
        .arg("cam")
        .env("PYTHONWARNINGS", "ignore::DeprecationWarning");
    if mediamtx {
        // `cam` records (`record: yes`): its segments are listed, and one deleted.
        cmd.args(["--mediamtx", "--recorded", "cam"]);
        let recorded = wait_until(Duration::from_secs(30), || {
            server.http("GET", "/v3/recordings/get/cam").json()["segments"].as_array().is_some_and(|s| !s.is_empty())
        });
        assert!(recorded, "cam records no segment:\n{}", server.log());
    }
    if rtmp.is_some() {
        cmd.args(["--rtmp-published", "live/rcam"]);
    }
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "v3_validate.py failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let summary = stdout.lines().find(|l| l.starts_with("v3 summary:")).unwrap_or("");
    assert!(summary.ends_with(" 0 invalid, 0 operations uncovered"), "{summary}");
    assert!(stdout.contains("kicked readers: 1"), "{stdout}");
    if mediamtx {
        assert!(!stdout.contains("recorded segments: 0"), "{stdout}");
    }
    if rtmp.is_some() {
        assert!(stdout.contains("kicked rtmp conns: 2"), "{stdout}");
        assert!(server.wait_log("publisher kicked", Duration::from_secs(30)), "{}", server.log());
    }
    stdout
}

#[test]
fn v3_api_matches_openapi_with_a_mediamtx_config() {
    let server = Server::start(
        "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: no\nwebrtc: no\nrtmp: yes\nrtmpAddress: 127.0.0.1:0\nsrt: no\n\
         # the camera\npaths:\n  cam:\n    source: publisher\n    record: yes\n    recordPath: ./rec/%path/%Y-%m-%d_%H-%M-%S-%f\n  live/rcam:\n    source: publisher\n  ~^other(\\d+)$:\n",
    );
    validate(&server, true, Some(rtmp_addr(&server)));
    // Edits went to the file, comments kept; the scratch path is gone again.
    let file = std::fs::read_to_string(server.dir.join("camrelay.yaml")).unwrap();
    assert!(file.contains("# the camera") && file.contains("  cam:\n    source: publisher"), "{file}");
    assert!(file.contains("readTimeout: '12s'") && file.contains("pathDefaults:\n  maxReaders: 3"), "{file}");
    assert!(!file.contains("v3-scratch"), "{file}");
    let paths = server.http("GET", "/v3/config/paths/list").json();
    let names: Vec<&str> = paths["items"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, vec!["cam", "live/rcam", "~^other(\\d+)$"]);
    // A path added through the API is a MediaMTX `paths:` entry, and the stream runs at once.
    let body = br#"{"source":"rtsp://admin:pw@192.0.2.9/live","sourceOnDemand":true,"maxReaders":2}"#;
    let r = http_request(server.api.unwrap(), "POST", "/v3/config/paths/add/door", &[], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let file = std::fs::read_to_string(server.dir.join("camrelay.yaml")).unwrap();
    assert!(
        file.contains(
            "  door:\n    maxReaders: 2\n    source: rtsp://admin:pw@192.0.2.9/live\n    sourceOnDemand: true\n"
        ),
        "{file}"
    );
    let door = server.http("GET", "/v3/config/paths/get/door").json();
    assert_eq!(door["source"], "rtsp://admin:***@192.0.2.9/live");
    assert_eq!(server.http("GET", "/api/streams?src=door").status, 200);
}

#[test]
fn v3_api_matches_openapi_with_a_go2rtc_config() {
    let server = Server::start("streams:\n  cam:\n");
    validate(&server, false, None);
    let file = std::fs::read_to_string(server.dir.join("camrelay.yaml")).unwrap();
    assert!(!file.contains("v3-scratch") && !file.contains("pathDefaults"), "{file}");
    // go2rtc's streams are MediaMTX paths with MediaMTX's defaults.
    let cam = server.http("GET", "/v3/config/paths/get/cam").json();
    assert_eq!((cam["source"].as_str(), cam["recordFormat"].as_str()), (Some("publisher"), Some("fmp4")));
}
