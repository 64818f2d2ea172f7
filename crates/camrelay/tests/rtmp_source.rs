//! The `rtmp://` source with real RTMP servers: a second camrelay that ffmpeg publishes into, and
//! ffmpeg's own `-listen 1` RTMP server; ffprobe/ffmpeg read the pulled stream back over RTSP. The
//! source reconnects when its server goes away and comes back, and a bad upstream (garbage, a closed
//! port, refused credentials, an unknown stream) is a typed error in `/api/streams` while other streams
//! keep working.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

/// ffmpeg publishing a 320x240 H.264 + AAC test pattern to `url` over RTMP (60 s).
fn publish(url: &str) -> Publisher {
    Publisher::encode("320x240", true, false, &["-t", "60", "-f", "flv", url])
}

/// ffmpeg's RTMP server (`-listen 1`): it waits for one player, then streams 320x240 H.264 + AAC to it.
fn ffmpeg_rtmp_server(port: u16) -> Publisher {
    Publisher::encode(
        "320x240",
        true,
        false,
        &["-t", "60", "-f", "flv", "-listen", "1", &format!("rtmp://127.0.0.1:{port}/live/x")],
    )
}

/// The stream's first pulled producer in `/api/streams`.
fn producer(srv: &Server, name: &str) -> Option<serde_json::Value> {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    if r.status != 200 {
        return None;
    }
    r.json()["producers"].as_array()?.first().cloned()
}

/// Frames the stream's producer pushed into its video track so far.
fn video_frames(srv: &Server, name: &str) -> u64 {
    producer(srv, name)
        .and_then(|p| {
            p["receivers"]
                .as_array()?
                .iter()
                .find(|r| r["codec"]["codec_type"] == "video")
                .and_then(|r| r["frames"].as_u64())
        })
        .unwrap_or(0)
}

/// H.264 320x240 and AAC 48 kHz over RTSP, and 30 decoded frames.
fn assert_reads_back(srv: &Server, name: &str) {
    let url = srv.rtsp_url(name);
    let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
    let audio = streams.iter().find(|s| s.codec_type == "audio").expect("audio stream");
    assert_eq!((audio.codec_name.as_str(), audio.sample_rate), ("aac", 48000), "{streams:?}");
    let n = decode_video_frames(&url, "tcp", 30).unwrap_or_else(|e| panic!("decode {url}: {e}\nlog:\n{}", srv.log()));
    assert!(n >= 30, "decoded {n} frames over RTSP");
}

#[test]
fn pulls_from_a_second_camrelay_that_ffmpeg_publishes_into() {
    let upstream = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let up = upstream.rtmp_addr();
    let _pusher = publish(&format!("rtmp://{up}/live/cam"));
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&upstream.rtsp_url("cam"), "tcp").is_ok()),
        "upstream not publishing; log:\n{}",
        upstream.log()
    );
    // Credentials in the authority are not RTMP's: dropped, and masked in the API.
    let srv = Server::start(&format!("streams:\n  relay: rtmp://user:secret@{up}/live/cam\n"));
    let _keep = rtsp_reader_for(&srv.rtsp_url("relay"), 30);
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&srv.rtsp_url("relay"), "tcp").is_ok()),
        "relay not readable; log:\n{}",
        srv.log()
    );
    assert_reads_back(&srv, "relay");

    let p = producer(&srv, "relay").unwrap();
    let url = p["url"].as_str().unwrap();
    assert!(url.starts_with("rtmp://") && !url.contains("secret"), "{p}");
    assert_eq!(p["state"], "online", "{p}");
    assert_eq!(p["remote_addr"], up.to_string(), "{p}");
    assert!(p["bytes_recv"].as_u64().unwrap() > 10_000, "{p}");
    let medias = p["medias"].to_string();
    assert!(medias.contains("H264") && medias.contains("AAC"), "{medias}");
    // The upstream sees camrelay as an RTMP player.
    let up_json = upstream.http("GET", "/api/streams?src=cam").json();
    assert!(up_json["consumers"].as_array().unwrap().iter().any(|c| c["protocol"] == "rtmp"), "{up_json}");
}

#[test]
fn pulls_from_ffmpeg_listen_rtmp_server() {
    let port = free_port();
    let _server = ffmpeg_rtmp_server(port);
    let srv = Server::start(&format!("streams:\n  cam: rtmp://127.0.0.1:{port}/live/x\n"));
    // ffmpeg's server serves one player: a long reader keeps the one connection in use.
    let _keep = rtsp_reader_for(&srv.rtsp_url("cam"), 40);
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&srv.rtsp_url("cam"), "tcp").is_ok()),
        "not readable; log:\n{}",
        srv.log()
    );
    assert_reads_back(&srv, "cam");
}

#[test]
fn reconnects_when_the_server_comes_back() {
    let port = free_port();
    let server = ffmpeg_rtmp_server(port);
    let srv = Server::start(&format!("streams:\n  cam: rtmp://127.0.0.1:{port}/live/x\n"));
    let _keep = rtsp_reader_for(&srv.rtsp_url("cam"), 60);
    assert!(wait_until(Duration::from_secs(30), || video_frames(&srv, "cam") > 25), "no frames; log:\n{}", srv.log());
    // The server goes away: the source fails (network) and retries while the reader wants it.
    drop(server);
    assert!(
        wait_until(Duration::from_secs(30), || producer(&srv, "cam")
            .is_some_and(|p| p["last_error_kind"] == "network")),
        "no network error; {:?}\nlog:\n{}",
        producer(&srv, "cam"),
        srv.log()
    );
    let before = video_frames(&srv, "cam");
    // It comes back on the same port: frames flow again into the same tracks.
    let _server = ffmpeg_rtmp_server(port);
    assert!(
        wait_until(Duration::from_secs(30), || video_frames(&srv, "cam") > before + 25),
        "no frames after the restart ({before} before); {:?}\nlog:\n{}",
        producer(&srv, "cam"),
        srv.log()
    );
    assert_eq!(producer(&srv, "cam").unwrap()["state"], "online");
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 10).expect("decode after the restart");
    assert!(n >= 10, "decoded {n}");
}

/// An upstream camrelay in MediaMTX's dialect whose readers need credentials.
const LOCKED_UPSTREAM: &str = r#"
logLevel: info
api: true
apiAddress: 127.0.0.1:0
rtspAddress: 127.0.0.1:0
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
hls: false
webrtc: false
srt: false
rtmp: true
rtmpAddress: 127.0.0.1:0
authInternalUsers:
- user: pub
  pass: secret
  ips: []
  permissions:
  - action: publish
- user: viewer
  pass: pw
  ips: []
  permissions:
  - action: read
  - action: api
paths:
  all_others:
"#;

#[test]
fn bad_upstreams_are_typed_errors_and_others_keep_working() {
    let upstream = Server::start(LOCKED_UPSTREAM);
    let up = upstream.rtmp_addr();
    let _pusher = publish(&format!("rtmp://{up}/live/cam?user=pub&pass=secret"));
    assert!(
        wait_until(Duration::from_secs(30), || upstream.log().contains("publisher connected")),
        "upstream not publishing; log:\n{}",
        upstream.log()
    );

    // A TCP server that answers in HTTP, and a closed port.
    let garbage = TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in garbage.incoming().map_while(Result::ok) {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let closed = free_port();
    let srv = Server::start(&format!(
        "streams:\n  garbage: rtmp://127.0.0.1:{garbage_port}/live/x\n  refused: rtmp://127.0.0.1:{closed}/live/x\n  \
         locked: rtmp://{up}/live/cam\n  missing: rtmp://{up}/live/nothing?user=viewer&pass=pw\n  \
         good: rtmp://{up}/live/cam?user=viewer&pass=pw\n"
    ));
    let readers: Vec<_> = ["garbage", "refused", "locked", "missing"]
        .iter()
        .map(|n| {
            let url = srv.rtsp_url(n);
            std::thread::spawn(move || ffprobe(&url, "tcp"))
        })
        .collect();
    for (name, kind, needle) in [
        ("garbage", "protocol", "unsupported version 72"),
        ("refused", "network", "connect"),
        ("locked", "auth", "not authorized"),
        ("missing", "other", "stream not found"),
    ] {
        assert!(
            wait_until(Duration::from_secs(30), || producer(&srv, name).is_some_and(
                |p| p["last_error_kind"] == kind && p["last_error"].as_str().is_some_and(|e| e.contains(needle))
            )),
            "{name}: expected a {kind} error with {needle:?}: {:?}\nlog:\n{}",
            producer(&srv, name),
            srv.log()
        );
    }
    // The error names the source (masked) and what the server said.
    let locked = producer(&srv, "locked").unwrap();
    let e = locked["last_error"].as_str().unwrap();
    assert!(e.starts_with(&format!("rtmp://{up}/live/cam: ")) && e.contains("NetStream.Play.StreamNotFound"), "{e}");
    for r in readers {
        assert!(r.join().unwrap().is_err(), "a bad upstream was readable");
    }
    // The good one (with the credentials in the query, as MediaMTX reads them) works beside them.
    assert_reads_back(&srv, "good");
}

#[test]
fn mediamtx_path_source_rtmp() {
    let upstream = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let up = upstream.rtmp_addr();
    let _pusher = publish(&format!("rtmp://{up}/live/cam"));
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&upstream.rtsp_url("cam"), "tcp").is_ok()),
        "upstream not publishing; log:\n{}",
        upstream.log()
    );
    let srv = Server::start(&format!(
        "api: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\n\
         rtcpAddress: 127.0.0.1:0\nhls: false\nwebrtc: false\nrtmp: false\nsrt: false\n\
         paths:\n  relay:\n    source: rtmp://{up}/live/cam\n"
    ));
    let url = srv.rtsp_url("relay");
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&url, "tcp").is_ok()), "log:\n{}", srv.log());
    let streams = ffprobe(&url, "tcp").unwrap();
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
}

/// `rtmps://` from camrelay's RTMPS listener (a self-signed certificate made by openssl): pinned with
/// `#fingerprint=` it plays; `rtmpx://` skips the check; plain `rtmps://` refuses the self-signed certificate.
#[test]
fn pulls_rtmps_from_an_rtmps_listener() {
    let dir = temp_dir("rtmps-src");
    let (cert, key) = make_cert(&dir, "upstream");
    let upstream = Server::start(&format!(
        "rtmp:\n  listen: 127.0.0.1:0\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\nstreams:\n  cam:\n",
        cert.display(),
        key.display()
    ));
    let tls = tls_addr(&upstream, "rtmp");
    let _pusher = publish(&format!("rtmp://{}/live/cam", upstream.rtmp_addr()));
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&upstream.rtsp_url("cam"), "tcp").is_ok()),
        "upstream not publishing; log:\n{}",
        upstream.log()
    );
    let fp = file_fingerprint(&cert);
    let srv = Server::start(&format!(
        "streams:\n  pinned: rtmps://{tls}/live/cam#fingerprint={fp}\n  novrfy: rtmpx://{tls}/live/cam\n  \
         strict: rtmps://{tls}/live/cam\n"
    ));
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&srv.rtsp_url("pinned"), "tcp").is_ok()),
        "pinned not readable; log:\n{}",
        srv.log()
    );
    assert_reads_back(&srv, "pinned");
    let up_json = upstream.http("GET", "/api/streams?src=cam").json();
    assert!(up_json["consumers"].as_array().unwrap().iter().any(|c| c["protocol"] == "rtmps"), "{up_json}");
    let streams = ffprobe(&srv.rtsp_url("novrfy"), "tcp").unwrap_or_else(|e| panic!("rtmpx: {e}\n{}", srv.log()));
    assert!(streams.iter().any(|s| s.codec_name == "h264" && s.width == 320), "{streams:?}");
    assert!(ffprobe(&srv.rtsp_url("strict"), "tcp").is_err());
    let p = producer(&srv, "strict").unwrap();
    let e = p["last_error"].as_str().unwrap_or_default();
    assert!(e.contains("TLS handshake: invalid peer certificate"), "{p}");
    assert_eq!(p["last_error_kind"], "network", "{p}");
}

/// Enhanced RTMP through the source: ffmpeg 9 publishes H.265 + AAC into a camrelay, which sends it on
/// as `hvc1` to our client (it announces `fourCcList`); ffprobe reads HEVC back over RTSP.
#[test]
fn pulls_h265_as_enhanced_rtmp() {
    let upstream = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let up = upstream.rtmp_addr();
    let url = format!("rtmp://{up}/live/cam");
    let _pusher = Publisher::spawn(
        ffmpeg9(),
        &[
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-x265-params",
            "log-level=none",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "25",
            "-c:a",
            "aac",
            "-t",
            "60",
            "-f",
            "flv",
            &url,
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&upstream.rtsp_url("cam"), "tcp").is_ok()),
        "upstream not publishing; log:\n{}",
        upstream.log()
    );
    let srv = Server::start(&format!("streams:\n  relay: {url}\n"));
    let _keep = rtsp_reader_for(&srv.rtsp_url("relay"), 30);
    let rtsp = srv.rtsp_url("relay");
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&rtsp, "tcp").is_ok()), "log:\n{}", srv.log());
    let streams = ffprobe(&rtsp, "tcp").unwrap();
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("hevc", 320, 240), "{streams:?}");
    assert!(streams.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{streams:?}");
    let n = decode_video_frames(&rtsp, "tcp", 30).unwrap_or_else(|e| panic!("decode: {e}\nlog:\n{}", srv.log()));
    assert!(n >= 30, "decoded {n} frames");
    let medias = producer(&srv, "relay").unwrap()["medias"].to_string();
    assert!(medias.contains("H265"), "{medias}");
}
