//! Issue 16: RTSP multicast delivery (`rtsp.multicast_ip_range`, MediaMTX's `multicastIPRange`).
//! ffmpeg readers with `-rtsp_transport udp_multicast` decode the stream; two readers share one group
//! (one hub reader sends each packet once); the SETUP reply names the group, ports and TTL; publishers
//! are refused multicast as MediaMTX refuses them. Runs in a network namespace the test makes
//! (`unshare --net`, a multicast route on `lo`).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends RTSP requests on one connection and returns each response's head and body.
struct RtspConn {
    stream: TcpStream,
    cseq: u32,
}

impl RtspConn {
    fn new(addr: std::net::SocketAddr) -> RtspConn {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RtspConn { stream, cseq: 0 }
    }

    fn request(&mut self, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> String {
        self.cseq += 1;
        let mut req = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.stream.write_all(req.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    return text;
                }
            }
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed; got {text:?}");
            got.extend_from_slice(&buf[..n]);
        }
    }
}

fn header<'a>(response: &'a str, name: &str) -> &'a str {
    response.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or("")
}

#[test]
fn ffmpeg_reads_rtsp_multicast_and_readers_share_one_group() {
    if in_netns("ffmpeg_reads_rtsp_multicast_and_readers_share_one_group") {
        return;
    }
    let (rtp_port, rtcp_port) = (free_port(), free_port());
    let srv = Server::start(&format!(
        "rtsp:\n  allow_any_publish: true\n  multicast_ip_range: 239.255.42.0/24\n  \
         multicast_rtp_port: {rtp_port}\n  multicast_rtcp_port: {rtcp_port}\nstreams:\n  cam:\n"
    ));
    let _publisher = Publisher::start(&srv.rtsp_url("cam"), "tcp", "320x240", true);
    assert!(srv.wait_log("publisher recording", Duration::from_secs(30)), "{}", srv.log());

    // The SETUP reply names the group, its ports and the TTL.
    let mut conn = RtspConn::new(srv.rtsp.unwrap());
    let url = srv.rtsp_url("cam");
    let describe = conn.request("DESCRIBE", &url, &[("Accept", "application/sdp")], "");
    assert!(describe.starts_with("RTSP/1.0 200"), "{describe}");
    let setup = conn.request("SETUP", &format!("{url}/trackID=0"), &[("Transport", "RTP/AVP;multicast")], "");
    assert!(setup.starts_with("RTSP/1.0 200"), "{setup}");
    let transport = header(&setup, "Transport");
    assert!(
        transport.starts_with(&format!(
            "RTP/AVP;multicast;destination=239.255.42.1;port={rtp_port}-{rtcp_port};ttl=16;ssrc="
        )),
        "{setup}"
    );
    // Mixing transports in one session is refused by name.
    let mixed = conn.request(
        "SETUP",
        &format!("{url}/trackID=1"),
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3"), ("Session", header(&setup, "Session"))],
        "",
    );
    assert!(mixed.starts_with("RTSP/1.0 461") && mixed.contains("multicast"), "{mixed}");
    drop(conn);

    // Two ffmpeg readers at once over udp_multicast: both decode 320x240 frames from the same group.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                decode_frames(&["-rtsp_transport", "udp_multicast"], &url, 75, Duration::from_secs(40))
            })
        })
        .collect();
    // While they read: two reader sessions over multicast, one group sending.
    let shared = wait_until(Duration::from_secs(30), || {
        let streams = srv.http("GET", "/api/streams").json();
        let consumers = streams["cam"]["consumers"].as_array().cloned().unwrap_or_default();
        let count = |p: &str| consumers.iter().filter(|c| c["protocol"] == p).count();
        count("rtsp+multicast") == 2 && count("multicast") == 1
    });
    let streams = srv.http("GET", "/api/streams").json();
    assert!(shared, "two multicast sessions and one group: {}", streams["cam"]["consumers"]);
    for r in readers {
        let (frames, stderr) = r.join().unwrap();
        assert_eq!(frames, 75, "ffmpeg over udp_multicast decoded {frames} frames: {stderr}");
    }
    let probed = ffprobe(&url, "udp_multicast").unwrap();
    let video = probed.iter().find(|s| s.codec_type == "video").expect("a video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{probed:?}");
    assert!(probed.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{probed:?}");
    let log = srv.log();
    let opened = log.matches("multicast group opened").count();
    assert!(opened >= 1, "{log}");
    println!("multicast: {opened} group(s) opened over the test (one while both readers read)");

    // Publishers get no multicast (MediaMTX's multicast is for readers too).
    let mut publisher = RtspConn::new(srv.rtsp.unwrap());
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n";
    let announce = publisher.request("ANNOUNCE", &srv.rtsp_url("pushed"), &[("Content-Type", "application/sdp")], sdp);
    assert!(announce.starts_with("RTSP/1.0 200"), "{announce}");
    let setup = publisher.request(
        "SETUP",
        &format!("{}/trackID=0", srv.rtsp_url("pushed")),
        &[("Transport", "RTP/AVP;multicast;mode=record"), ("Session", header(&announce, "Session"))],
        "",
    );
    assert!(setup.starts_with("RTSP/1.0 461") && setup.contains("multicast is for readers only"), "{setup}");
}

/// The RTSP client joins groups too (`#transport=multicast`, MediaMTX's `rtspTransport: multicast`): a
/// second camrelay pulls the first's stream over multicast and ffmpeg decodes it from the second.
#[test]
fn camrelay_pulls_an_rtsp_source_over_multicast() {
    if in_netns("camrelay_pulls_an_rtsp_source_over_multicast") {
        return;
    }
    let (rtp_port, rtcp_port) = (free_port(), free_port());
    let origin = Server::start(&format!(
        "rtsp:\n  allow_any_publish: true\n  multicast_ip_range: 239.255.43.0/24\n  \
         multicast_rtp_port: {rtp_port}\n  multicast_rtcp_port: {rtcp_port}\nstreams:\n  cam:\n"
    ));
    let _publisher = Publisher::start(&origin.rtsp_url("cam"), "tcp", "320x240", false);
    assert!(origin.wait_log("publisher recording", Duration::from_secs(30)), "{}", origin.log());
    let relay = Server::start(&format!(
        "rtsp:\n  multicast_ip_range: \"\"\nstreams:\n  relay: {}#transport=multicast\n",
        origin.rtsp_url("cam")
    ));
    let (frames, stderr) =
        decode_frames(&["-rtsp_transport", "tcp"], &relay.rtsp_url("relay"), 50, Duration::from_secs(40));
    assert_eq!(frames, 50, "{stderr}\nrelay log:\n{}\norigin log:\n{}", relay.log(), origin.log());
    let probed = ffprobe(&relay.rtsp_url("relay"), "tcp").unwrap();
    let video = probed.iter().find(|s| s.codec_type == "video").expect("a video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{probed:?}");
    // The origin sent it to a group: its reader is a multicast session.
    let streams = origin.http("GET", "/api/streams").json();
    let consumers = streams["cam"]["consumers"].as_array().cloned().unwrap_or_default();
    assert!(consumers.iter().any(|c| c["protocol"] == "rtsp+multicast"), "{consumers:?}");
    assert!(consumers.iter().any(|c| c["protocol"] == "multicast"), "{consumers:?}");
}
