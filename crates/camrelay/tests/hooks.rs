//! MediaMTX's hooks (`runOn*`) and log settings, with real processes: the hooks run a shell script
//! that records its event and its `MTX_*` / `RTSP_PORT` / `G1` variables in a file of its own; ffmpeg
//! publishes and ffprobe reads over RTSP; `runOnDemand` starts an ffmpeg that publishes into the path.
//! Processes are found through `/proc` (command lines, parents, zombie states).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The events the script wrote: one file per run, `<event>.<pid>`, holding `KEY=value` lines.
fn events(dir: &Path, event: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.split('.').next() != Some(event) || name.ends_with(".tmp") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        out.push(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect());
    }
    out
}

/// The hook script: records `$1` and the hook variables; `last` makes it stay (as a command that
/// lasts as long as its state would) as `sleep <marker>`.
fn write_script(dir: &Path, marker: &str) -> PathBuf {
    let script = dir.join("hook.sh");
    let text = format!(
        "#!/bin/sh\nout=\"{}/$1.$$\"\nenv | grep -E '^(MTX_|RTSP_PORT|G[0-9])' > \"$out.tmp\"\nmv \"$out.tmp\" \"$out\"\n\
         if [ \"$2\" = last ]; then exec sleep {marker}; fi\n",
        dir.display()
    );
    std::fs::write(&script, text).unwrap();
    script
}

/// Processes whose command line contains `needle` (not zombies), by pid.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && pid != std::process::id() {
            found.push(pid);
        }
    }
    found
}

/// Zombie children of `parent` (state `Z` in `/proc/PID/stat`).
fn zombies_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`: the fields after the last `)`.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5 && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| p.len() == *n)
}

#[test]
fn hooks_run_with_mediamtx_variables_and_are_owned() {
    let dir = temp_dir("hooks");
    let marker = format!("86400.{}", std::process::id() % 100_000 + 7);
    let script = write_script(&dir, &marker);
    let sh = |event: &str, last: bool| format!("sh {} {event}{}", script.display(), if last { " last" } else { "" });
    let config = format!(
        r#"
api: true
apiAddress: 127.0.0.1:0
rtspAddress: 127.0.0.1:0
rtspTransports: [tcp]
hls: false
webrtc: false
rtmp: true
rtmpAddress: 127.0.0.1:0
srt: false
runOnConnect: {connect}
runOnDisconnect: {disconnect}
paths:
  ~^live(\d+)$:
    runOnReady: {ready}
    runOnNotReady: {notready}
    runOnRead: {read}
    runOnUnread: {unread}
  ondemand:
    runOnDemand: ffmpeg -v error -re -f lavfi -i testsrc=size=320x240:rate=25 -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p -f rtsp rtsp://127.0.0.1:$RTSP_PORT/$MTX_PATH
    runOnDemandStartTimeout: 20s
    runOnDemandCloseAfter: 2s
    runOnUnDemand: {undemand}
  pulled:
    source: demo:clip
    runOnReady: {pulled}
  init:
    runOnInit: {init}
    runOnInitRestart: true
  keep:
    runOnInit: {keep}
"#,
        connect = sh("connect", false),
        disconnect = sh("disconnect", false),
        ready = sh("ready", true),
        notready = sh("notready", false),
        read = sh("read", true),
        unread = sh("unread", false),
        undemand = sh("undemand", false),
        init = sh("init", false),
        pulled = sh("pulled", false),
        keep = sh("keep", true),
    );
    let mut server = Server::start(&config);
    let port = server.rtsp.unwrap().port().to_string();

    // runOnInit at start; the one that exits is started again (runOnInitRestart) 5 s later.
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "keep").is_empty()), "{}", server.log());
    let keep = &events(&dir, "keep")[0];
    assert_eq!(keep.get("MTX_PATH").map(String::as_str), Some("keep"));
    assert_eq!(keep.get("RTSP_PORT"), Some(&port));
    assert!(wait_until(Duration::from_secs(30), || events(&dir, "init").len() >= 2), "{}", server.log());
    // A pulled source (connected at start: sourceOnDemand is false) is ready once online.
    let pulled = events(&dir, "pulled");
    assert_eq!(pulled.len(), 1, "{pulled:?}");
    assert_eq!(pulled[0].get("MTX_PATH").map(String::as_str), Some("pulled"));
    assert_eq!(pulled[0].get("MTX_SOURCE_TYPE").map(String::as_str), Some("rtspSession"));
    assert_eq!(pulled[0].get("MTX_SOURCE_ID").map(String::as_str), Some(""), "a pulled source has no id");

    // A publisher: connect, ready (with the regular expression's group), then read/unread by ffprobe.
    let live = server.rtsp_url("live7");
    let publisher = Publisher::start(&live, "tcp", "320x240", false);
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "ready").is_empty()), "{}", server.log());
    let ready = &events(&dir, "ready")[0];
    assert_eq!(ready.get("MTX_PATH").map(String::as_str), Some("live7"));
    assert_eq!(ready.get("G1").map(String::as_str), Some("7"));
    assert_eq!(ready.get("RTSP_PORT"), Some(&port));
    assert_eq!(ready.get("MTX_SOURCE_TYPE").map(String::as_str), Some("rtspSession"));
    assert!(ready.get("MTX_SOURCE_ID").is_some_and(|id| is_uuid(id)), "{ready:?}");
    // Each hook is a process of its own: runOnConnect's line may land after runOnReady's.
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "connect").is_empty()), "{}", server.log());
    let connect = events(&dir, "connect");
    assert_eq!(connect[0].get("MTX_CONN_TYPE").map(String::as_str), Some("rtspConn"));
    assert!(connect[0].get("MTX_CONN_ID").is_some_and(|id| is_uuid(id)), "{connect:?}");
    assert_eq!(connect[0].get("RTSP_PORT"), Some(&port));

    let probed = ffprobe(&format!("{live}?video=h264"), "tcp").expect("ffprobe reads the published path");
    assert_eq!(probed[0].codec_name, "h264");
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "unread").is_empty()), "{}", server.log());
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "read").is_empty()), "{}", server.log());
    let read = &events(&dir, "read")[0];
    assert_eq!(read.get("MTX_PATH").map(String::as_str), Some("live7"));
    assert_eq!(read.get("G1").map(String::as_str), Some("7"));
    assert_eq!(read.get("MTX_QUERY").map(String::as_str), Some("video=h264"));
    assert_eq!(read.get("MTX_READER_TYPE").map(String::as_str), Some("rtspSession"));
    assert!(read.get("MTX_READER_ID").is_some_and(|id| is_uuid(id)), "{read:?}");
    assert_eq!(events(&dir, "unread")[0].get("MTX_READER_ID"), read.get("MTX_READER_ID"));
    // The publisher's and ffprobe's connections ended or will: disconnect with the same variables.
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "disconnect").is_empty()), "{}", server.log());
    assert!(events(&dir, "disconnect").iter().all(|d| d.get("MTX_CONN_TYPE").map(String::as_str) == Some("rtspConn")));

    // runOnRead lasted as long as the reader: its `sleep` is gone with it. runOnReady's is still there.
    let lasting = format!("sleep {marker}");
    // keep (runOnInit) + ready; read's ended.
    assert!(
        wait_until(Duration::from_secs(30), || processes_with(&lasting).len() == 2),
        "{:?}",
        processes_with(&lasting)
    );
    drop(publisher);
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "notready").is_empty()), "{}", server.log());
    let notready = &events(&dir, "notready")[0];
    assert_eq!(notready.get("MTX_SOURCE_ID"), ready.get("MTX_SOURCE_ID"));
    assert!(
        wait_until(Duration::from_secs(30), || processes_with(&lasting).len() == 1),
        "runOnReady's command outlived the publisher"
    );

    // Over RTMP: an rtmpConn connection and an rtmpConn source.
    let rtmp = server.rtmp_addr();
    let rtmp_url = format!("rtmp://{rtmp}/live8");
    let publisher = Publisher::encode("320x240", false, false, &["-t", "60", "-f", "flv", &rtmp_url]);
    let live8 = |e: &BTreeMap<String, String>| e.get("MTX_PATH").map(String::as_str) == Some("live8");
    assert!(wait_until(Duration::from_secs(30), || events(&dir, "ready").iter().any(live8)), "{}", server.log());
    let ready8 = events(&dir, "ready").into_iter().find(live8).unwrap();
    assert_eq!(ready8.get("MTX_SOURCE_TYPE").map(String::as_str), Some("rtmpConn"));
    assert_eq!(ready8.get("G1").map(String::as_str), Some("8"));
    let rtmp_conn = |e: &BTreeMap<String, String>| e.get("MTX_CONN_TYPE").map(String::as_str) == Some("rtmpConn");
    assert!(wait_until(Duration::from_secs(30), || events(&dir, "connect").iter().any(rtmp_conn)), "{}", server.log());
    // An RTMP reader gives runOnRead the query of its URL, as RTSP readers do.
    let probed = ffprobe(&format!("{rtmp_url}?tag=rtmp"), "tcp").expect("ffprobe reads live8 over RTMP");
    assert!(probed.iter().any(|s| s.codec_name == "h264"), "{probed:?}");
    assert!(wait_until(Duration::from_secs(30), || events(&dir, "read").iter().any(live8)), "{}", server.log());
    let read8 = events(&dir, "read").into_iter().find(live8).unwrap();
    assert_eq!(read8.get("MTX_QUERY").map(String::as_str), Some("tag=rtmp"), "{read8:?}");
    drop(publisher);
    assert!(wait_until(Duration::from_secs(30), || events(&dir, "notready").iter().any(live8)), "{}", server.log());
    assert!(wait_until(Duration::from_secs(30), || events(&dir, "disconnect").iter().any(rtmp_conn)));
    assert!(wait_until(Duration::from_secs(30), || processes_with(&lasting).len() == 1));

    // runOnDemand: the first reader starts ffmpeg, which publishes into the path; ffprobe sees it.
    let ondemand = server.rtsp_url("ondemand");
    // The command's line (readers' lines have the URL too, but not `-f rtsp` before it).
    let ffmpeg_marker = format!("-f rtsp rtsp://127.0.0.1:{port}/ondemand");
    assert!(processes_with(&ffmpeg_marker).is_empty());
    let probed = ffprobe(&ondemand, "tcp").expect("ffprobe reads the on-demand path");
    assert_eq!((probed[0].codec_name.as_str(), probed[0].width, probed[0].height), ("h264", 320, 240), "{probed:?}");
    assert!(decode_video_frames(&ondemand, "tcp", 10).unwrap() >= 10);
    assert_eq!(processes_with(&ffmpeg_marker).len(), 1, "one on-demand command for both readers");
    // No reader left: after runOnDemandCloseAfter (2 s) the command is stopped and reaped, and
    // runOnUnDemand runs.
    assert!(wait_until(Duration::from_secs(30), || processes_with(&ffmpeg_marker).is_empty()), "{}", server.log());
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "undemand").is_empty()), "{}", server.log());
    assert_eq!(events(&dir, "undemand")[0].get("MTX_PATH").map(String::as_str), Some("ondemand"));
    let server_pid = processes_with(&format!("{}/camrelay.yaml", server.dir.display()))[0];
    assert!(zombies_of(server_pid).is_empty(), "zombies: {:?}", zombies_of(server_pid));

    // A reload that changes a path's runOnInit stops the old command and starts the new one.
    let before = processes_with(&lasting);
    assert_eq!(before.len(), 1, "keep's command");
    let file = server.dir.join("camrelay.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, yaml.replace(&sh("keep", true), &sh("kept", true))).unwrap();
    assert!(wait_until(Duration::from_secs(30), || !events(&dir, "kept").is_empty()), "{}", server.log());
    let replaced = || {
        let now = processes_with(&lasting);
        now.len() == 1 && now[0] != before[0]
    };
    assert!(wait_until(Duration::from_secs(30), replaced), "{:?} (was {before:?})", processes_with(&lasting));

    // Server exit: every hook command (keep's `sleep`, init's restarts) is stopped.
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    assert!(
        wait_until(Duration::from_secs(30), || processes_with(&lasting).is_empty()),
        "hook commands outlived the server"
    );
    assert!(processes_with(&script.display().to_string()).is_empty());
    if std::env::var("HOOKS_TEST_LOG").is_ok() {
        eprintln!("{}", server.log());
    }
}

#[test]
fn hook_commands_that_do_not_parse_are_refused_with_the_key() {
    let dir = temp_dir("hooks-bad");
    let config = dir.join("mediamtx.yml");
    std::fs::write(&config, "rtspAddress: 127.0.0.1:0\npaths:\n  cam:\n    runOnReady: sh -c 'echo\n").unwrap();
    let out =
        run_with_timeout(Command::new(env!("CARGO_BIN_EXE_camrelay")).arg("-c").arg(&config), Duration::from_secs(10));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("paths.cam.runOnReady: unterminated single-quoted string"), "{err}");
}

#[test]
fn mediamtx_log_file_with_structured_lines() {
    let dir = temp_dir("hooks-log");
    let log = dir.join("mediamtx.log");
    let config = dir.join("mediamtx.yml");
    std::fs::write(
        &config,
        format!(
            "logLevel: debug\nlogDestinations: [file]\nlogStructured: true\nlogFile: {}\nrtspAddress: 127.0.0.1:0\n\
             rtmp: false\nhls: false\nwebrtc: false\nsrt: false\npaths:\n  all_others:\n",
            log.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_camrelay"))
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = lines_of(child.stdout.take().unwrap());
    let listening =
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log).unwrap_or_default().contains("listen"));
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(listening, "no listen line in {}: {text}", log.display());
    assert!(status.success());
    // Every line is a JSON object with MediaMTX's level names, and the RTSP listener's line is there.
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.len() >= 2, "{text}");
    assert!(lines.iter().all(|l| l["time"].is_string() && l["message"].is_string()), "{text}");
    let listen = lines.iter().find(|l| l["module"] == "rtsp" && l["message"] == "listen").expect(&text);
    assert_eq!(listen["level"], "info");
    assert!(listen["addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{listen}");
    assert!(lines.iter().any(|l| l["message"] == "shutting down"), "{text}");
    // Nothing on the console: stdout is not a destination.
    let console: Vec<String> = stdout.try_iter().collect();
    assert!(console.is_empty(), "{console:?}");
}
