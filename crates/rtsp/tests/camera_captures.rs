//! Data-driven regression tests over the real camera replies in `tests/captures/` (copied from
//! `shared/camera-captures/`; see its README). Each file is parsed, and per-file assertions pin concrete
//! values.

use std::path::PathBuf;

use media::{Direction, Kind};
use rtsp::sdp::{self, client_direction, SessionDescription};
use rtsp::transport::{self, LowerTransport, TransportMode};
use rtsp::url::{self, SessionHeader};
use rtsp::{decode, Decoded, Request, Response};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/captures")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Decodes the whole file as one message, also checking that every strict prefix is incomplete.
fn decode_all(name: &str, data: &[u8]) -> Decoded {
    for i in 0..data.len() {
        assert_eq!(decode(&data[..i]).unwrap(), None, "{name}: prefix of {i} bytes");
    }
    let (d, used) =
        decode(data).unwrap_or_else(|e| panic!("{name}: {e}")).unwrap_or_else(|| panic!("{name}: incomplete"));
    assert_eq!(used, data.len(), "{name}: consumed");
    d
}

fn response(name: &str) -> Response {
    let data = read(name);
    match decode_all(name, &data) {
        Decoded::Response(r) => r,
        other => panic!("{name}: expected a response, got {other:?}"),
    }
}

/// Parses a DESCRIBE reply and returns the SDP plus the control URLs built from Content-Base /
/// Content-Location / the request URL.
fn describe(name: &str, request_url: &str) -> (Response, SessionDescription, String, Vec<String>) {
    let r = response(name);
    assert_eq!(r.status, 200, "{name}");
    let sd = sdp::parse(&r.body).unwrap_or_else(|e| panic!("{name}: {e}"));
    let base = url::base_url(r.headers.get("Content-Base"), r.headers.get("Content-Location"), request_url).to_string();
    let aggregate = url::control_url(&base, sd.control.as_deref().unwrap_or(""));
    let controls = sd.medias.iter().map(|m| url::control_url(&base, &m.control)).collect();
    (r, sd, aggregate, controls)
}

fn sdp_file(name: &str) -> SessionDescription {
    let data = read(name);
    sdp::parse(&data).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn codec(sd: &SessionDescription, i: usize) -> (&str, u32, u16, u8) {
    let c = &sd.medias[i].codecs[0];
    (c.name.as_str(), c.clock_rate, c.channels, c.payload_type)
}

fn session(r: &Response) -> (String, Option<u32>) {
    let s = SessionHeader::parse(r.headers.get("Session").expect("Session header")).unwrap();
    (s.id, s.timeout)
}

#[test]
fn every_capture_parses() {
    let d = dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&d).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".txt") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        n += 1;
        if data.starts_with(b"v=") {
            let sd = sdp::parse(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!sd.medias.is_empty(), "{name}");
            continue;
        }
        match decode_all(&name, &data) {
            Decoded::Response(r) => {
                assert!(r.cseq().is_some(), "{name}: CSeq");
                if r.headers.get("Content-Type").is_some() || !r.body.is_empty() {
                    sdp::parse(&r.body).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                if let Some(t) = r.headers.get("Transport") {
                    transport::parse(t).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                if let Some(s) = r.headers.get("Session") {
                    SessionHeader::parse(s).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            }
            Decoded::Request(q) => assert!(q.cseq().is_some(), "{name}"),
            Decoded::Interleaved { .. } => panic!("{name}: interleaved?"),
        }
    }
    assert!(n >= 28, "expected the 28 captures, found {n}");
}

#[test]
fn bunny_describe() {
    for name in ["bunny_describe.txt", "rtsp_response.txt"] {
        let (r, sd, agg, controls) = describe(name, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov");
        assert_eq!(r.body.len(), 589);
        assert_eq!(session(&r), ("1642021126".into(), Some(60)));
        assert_eq!(sd.session_name, "BigBuckBunny_115k.mov");
        assert_eq!(sd.control.as_deref(), Some("*"));
        assert_eq!(agg, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/");
        assert_eq!(sd.medias[0].kind, Kind::Audio);
        assert_eq!(codec(&sd, 0), ("MPEG4-GENERIC", 12000, 2, 96));
        assert_eq!(sd.medias[0].codecs[0].fmtp_param("config"), Some("1490"));
        assert_eq!(codec(&sd, 1), ("H264", 90000, 0, 97));
        assert_eq!(sd.medias[1].codecs[0].fmtp_param("profile-level-id"), Some("42C01E"));
        assert_eq!(
            controls,
            [
                "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=1",
                "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=2"
            ]
        );
        assert_eq!(sd.medias[1].direction, Direction::SendRecv);
        assert_eq!(client_direction(sd.medias[1].direction), Direction::RecvOnly);
    }
}

#[test]
fn dahua_describe_h264_aac_onvif() {
    let (_, sd, agg, controls) = describe(
        "dahua_describe_h264_aac_onvif.txt",
        "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif",
    );
    let base = "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif/";
    assert_eq!(agg, base);
    assert_eq!(sd.session_name, "Media Server");
    assert_eq!(sd.medias.len(), 3);
    assert_eq!(codec(&sd, 0), ("H264", 90000, 0, 96));
    assert_eq!(codec(&sd, 1), ("MPEG4-GENERIC", 48000, 0, 97));
    assert_eq!(sd.medias[1].codecs[0].fmtp_param("streamtype"), Some("5"));
    assert_eq!(sd.medias[2].kind, Kind::Application);
    assert_eq!(codec(&sd, 2), ("VND.ONVIF.METADATA", 90000, 0, 107));
    assert!(sd.medias.iter().all(|m| m.direction == Direction::RecvOnly));
    assert_eq!(controls, [format!("{base}trackID=0"), format!("{base}trackID=1"), format!("{base}trackID=4")]);
}

#[test]
fn dahua_describe_h265_pcma() {
    let (_, sd, _, controls) =
        describe("dahua_describe_h265_pcma.txt", "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2");
    assert_eq!(codec(&sd, 0), ("H265", 90000, 0, 98));
    let c = &sd.medias[0].codecs[0];
    assert_eq!(c.fmtp_param("sprop-pps"), Some("RAHA8saNA7NA"));
    assert_eq!(c.fmtp_param("sprop-vps"), Some("QAEMAf//AWAAAAMAsAAAAwAAAwBarAwAAAMABAAAAwAyqA=="));
    assert_eq!(codec(&sd, 1), ("PCMA", 8000, 0, 8));
    assert_eq!(
        controls,
        [
            "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2/trackID=0",
            "rtsp://cam-driveway/cam/realmonitor?channel=1&subtype=2/trackID=1"
        ]
    );
}

#[test]
fn foscam_describe() {
    let (_, sd, agg, controls) = describe("foscam_describe.txt", "rtsp://192.168.5.107:65534/videoMain");
    assert_eq!(sd.session_name, "IP Camera Video");
    assert_eq!(agg, "rtsp://192.168.5.107:65534/videoMain/");
    assert_eq!(codec(&sd, 0), ("H264", 90000, 0, 96));
    // Static payload type 0 with no rtpmap.
    assert_eq!(codec(&sd, 1), ("PCMU", 8000, 0, 0));
    assert_eq!(
        controls,
        ["rtsp://192.168.5.107:65534/videoMain/track1", "rtsp://192.168.5.107:65534/videoMain/track2"]
    );
}

#[test]
fn h264dvr_describe() {
    let (r, sd, agg, controls) = describe("h264dvr_describe.txt", "rtsp://127.0.0.1:554/camera");
    assert_eq!(r.cseq(), Some("3")); // sent as `Cseq`
    assert_eq!(agg, "rtsp://127.0.0.1:554/camera");
    // `a=rtpmap:96 H264/90000 ` has a trailing space.
    assert_eq!(codec(&sd, 0), ("H264", 90000, 0, 96));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("profile-level-id"), Some("420029"));
    assert_eq!(codec(&sd, 1), ("PCMA", 8000, 0, 8));
    assert_eq!(controls, ["rtsp://127.0.0.1:554/camera/trackID=3", "rtsp://127.0.0.1:554/camera/trackID=4"]);
}

#[test]
fn hikvision_describe() {
    let (_, sd, agg, controls) = describe("hikvision_describe.txt", "rtsp://192.168.5.106:554/Streaming/Channels/101");
    assert_eq!(agg, "rtsp://192.168.5.106:554/Streaming/Channels/101/?transportmode=unicast&profile=Profile_1");
    assert_eq!(sd.medias.len(), 2);
    assert_eq!(codec(&sd, 0), ("H264", 90000, 0, 96));
    assert_eq!(sd.medias[1].kind, Kind::Application);
    assert_eq!(
        controls,
        [
            "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1",
            "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=3?transportmode=unicast&profile=Profile_1"
        ]
    );
    // What our server would extract from such a SETUP URL.
    let t = url::parse_request_uri(&controls[0]);
    assert_eq!((t.path.as_str(), t.track), ("Streaming/Channels/101", Some(1)));
    assert_eq!(t.query, "transportmode=unicast&profile=Profile_1");
}

#[test]
fn macrovideo_describe() {
    let (_, sd, agg, controls) = describe("macrovideo_describe.txt", "rtsp://192.168.1.50:554/live");
    assert_eq!(sd.session_name, "streamed by the macro-video rtsp server");
    assert_eq!(agg, "rtsp://192.168.1.50:554/live");
    assert_eq!(codec(&sd, 0), ("H264", 90000, 0, 96));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("profile-level-id"), Some("TeAo"));
    assert_eq!(controls, ["rtsp://192.168.1.50:554/live/track1"]);
}

#[test]
fn missing_content_type_describe() {
    let (r, sd, _, controls) = describe("missing_content_type_describe.txt", "rtsp://192.168.1.101:8554/stream");
    assert_eq!(r.headers.get("Content-Type"), None);
    assert_eq!(session(&r), ("l0TtlUFSR".into(), None));
    assert_eq!(sd.session_name, "No Name");
    assert_eq!(codec(&sd, 1), ("MPEG4-GENERIC", 48000, 2, 97));
    assert_eq!(sd.medias[1].codecs[0].fmtp_param("config"), Some("119056E500"));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("profile-level-id"), Some("64000D"));
    assert_eq!(
        controls,
        ["rtsp://192.168.1.101:8554/stream/streamid=0", "rtsp://192.168.1.101:8554/stream/streamid=1"]
    );
}

#[test]
fn anpviz_sdp() {
    let sd = sdp_file("anpviz_sdp.txt");
    assert_eq!(sd.control.as_deref(), Some("*"));
    assert_eq!(codec(&sd, 0), ("H264", 90000, 0, 96));
    assert_eq!(sd.medias[0].control, "trackID=1");
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("packetization-mode"), Some("0"));
    // rtpmap overrides the static meaning of payload type 0.
    assert_eq!(codec(&sd, 1), ("MPEG4-GENERIC", 16000, 2, 0));
    assert_eq!(sd.medias[1].codecs[0].fmtp_param("config"), Some("1408"));
    assert_eq!(sd.medias[1].control, "trackID=2");
}

#[test]
fn geovision_sdp() {
    let sd = sdp_file("geovision_sdp.txt");
    assert_eq!(sd.control, None);
    assert_eq!(codec(&sd, 0), ("H264", 90000, 0, 105));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("packetization-mode"), Some("1"));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("profile-level-id"), Some("4d4032"));
    assert_eq!(sd.medias[1].codecs[0].fmtp, "DecoderTag=h3c-v3 RTCP=0");
    let controls: Vec<_> = sd.medias.iter().map(|m| url::control_url("rtsp://192.168.5.237/", &m.control)).collect();
    assert_eq!(controls, ["rtsp://192.168.5.237/media/video1/video", "rtsp://192.168.5.237/media/video1/metadata"]);
}

#[test]
fn tplink_sdp() {
    let sd = sdp_file("tplink_sdp.txt");
    assert_eq!(sd.session_name, "Session streamed by \"TP-LINK RTSP Server\"");
    assert_eq!(sd.medias.len(), 3);
    assert_eq!(codec(&sd, 0), ("H265", 90000, 0, 96));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("sprop-pps"), Some("RAHAcvAbJA=="));
    assert_eq!(codec(&sd, 1), ("PCMA", 8000, 0, 8));
    // `m=application/TP-LINK 0 RTP/AVP smart/1/90000` with `a=rtpmap:95 TP-LINK/90000`.
    assert_eq!(sd.medias[2].kind, Kind::Application);
    assert_eq!(codec(&sd, 2), ("TP-LINK", 90000, 0, 95));
    assert_eq!(sd.medias[2].control, "track3");
}

#[test]
fn ubiquiti_sdp() {
    let sd = sdp_file("ubiquiti_sdp.txt");
    assert_eq!(sd.session_name, "68D79AE46148_0");
    assert_eq!(sd.medias.len(), 3);
    assert_eq!(codec(&sd, 0), ("MPEG4-GENERIC", 48000, 1, 96));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("sizelength"), Some("13"));
    assert_eq!(sd.medias[0].codecs[0].fmtp_param("config"), Some("1188"));
    assert_eq!(codec(&sd, 1), ("OPUS", 48000, 2, 96));
    assert_eq!(sd.medias[1].codecs[0].fmtp, "");
    assert_eq!(codec(&sd, 2), ("H264", 90000, 0, 97));
    assert_eq!(sd.medias[2].control, "trackID=2");
    assert!(sd.medias.iter().all(|m| m.direction == Direction::RecvOnly));
}

fn setup(name: &str) -> (Response, rtsp::Transport) {
    let r = response(name);
    let mut l = transport::parse(r.headers.get("Transport").expect("Transport")).unwrap();
    assert_eq!(l.len(), 1, "{name}");
    (r, l.remove(0))
}

#[test]
fn setups() {
    let (r, t) = setup("bunny_setup.txt");
    assert_eq!(session(&r), ("1642021126".into(), Some(60)));
    assert_eq!((t.lower, t.multicast, t.interleaved), (LowerTransport::Tcp, Some(false), Some((0, 1))));

    let (r, t) = setup("dahua_setup.txt");
    assert_eq!(session(&r), ("634214675641".into(), Some(60)));
    assert_eq!((t.interleaved, t.ssrc), (Some((0, 1)), Some(0x30A98EE7)));

    for (name, id, client, server) in [
        ("h264dvr_setup_audio.txt", "231980", (18716, 18717), (40006, 40007)),
        ("h264dvr_setup_video.txt", "231970", (18714, 18715), (40004, 40005)),
    ] {
        let (r, t) = setup(name);
        assert_eq!(session(&r), (id.into(), Some(60)));
        assert_eq!(t.lower, LowerTransport::Udp);
        assert_eq!(t.mode, Some(TransportMode::Play));
        assert_eq!(t.source.as_deref(), Some("127.0.0.1"));
        assert_eq!((t.client_port, t.server_port, t.ssrc), (Some(client), Some(server), Some(0)));
    }

    let (r, t) = setup("hikvision_setup.txt");
    assert_eq!(session(&r), ("708345999".into(), Some(60)));
    assert_eq!((t.ssrc, t.mode), (Some(0x4cacc3d1), Some(TransportMode::Play)));

    let (r, t) = setup("hikvision_setup_ssrc_space.txt");
    assert_eq!(session(&r), ("708886412".into(), Some(60)));
    assert_eq!((t.interleaved, t.ssrc), (Some((0, 1)), Some(0x0d6d6627)));

    let (r, t) = setup("luckfox_rkipc_setup_tcp.txt");
    assert_eq!(session(&r), ("12345678".into(), None));
    assert_eq!(
        (t.lower, t.multicast, t.interleaved, t.ssrc),
        (LowerTransport::Tcp, None, Some((0, 1)), Some(0x22345684))
    );

    let (_, t) = setup("luckfox_rkipc_setup_udp.txt");
    assert_eq!((t.lower, t.ssrc), (LowerTransport::Udp, Some(0x22345685)));
    assert_eq!((t.client_port, t.server_port), (Some((54060, 54061)), Some((49152, 49153))));
}

#[test]
fn plays() {
    let r = response("bunny_play.txt");
    assert_eq!(session(&r), ("551045787".into(), Some(60)));
    let info = url::parse_rtp_info(r.headers.get("RTP-Info").unwrap());
    assert_eq!(info.len(), 2);
    assert_eq!((info[0].url.as_str(), info[0].seq, info[0].rtptime), ("trackID=1", Some(1), Some(0)));
    assert_eq!(info[1].url, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=2");
    let range = url::parse_npt_range(r.headers.get("Range").unwrap()).unwrap();
    assert_eq!((range.start, range.end), (Some(0.0), Some(596.48)));

    let r = response("bad_rtptime.txt");
    let info = url::parse_rtp_info(r.headers.get("RTP-Info").unwrap());
    assert_eq!(info.len(), 2);
    assert!(info.iter().all(|i| i.seq == Some(1) && i.rtptime.is_none()));

    let r = response("dahua_play.txt");
    assert_eq!(session(&r), ("634214684047".into(), None));
    let info = url::parse_rtp_info(r.headers.get("RTP-Info").unwrap());
    let got: Vec<_> = info.iter().map(|i| (i.url.as_str(), i.seq, i.rtptime)).collect();
    assert_eq!(
        got,
        [
            ("trackID=0", Some(47121), Some(3475222385)),
            ("trackID=1", Some(45186), Some(2234446919)),
            ("trackID=4", Some(36583), Some(816418535))
        ]
    );
    assert_eq!(url::parse_npt_range(r.headers.get("Range").unwrap()).unwrap().start, Some(0.0));

    let r = response("h264dvr_play.txt");
    assert_eq!(session(&r), ("231970".into(), None));
    assert_eq!(url::parse_npt_range(r.headers.get("Range").unwrap()).unwrap().start, None);

    let r = response("hikvision_play.txt");
    assert_eq!(session(&r), ("708345999".into(), None));
    let info = url::parse_rtp_info(r.headers.get("RTP-Info").unwrap());
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].seq, Some(24104));
    assert_eq!(info[0].rtptime, Some(1270711678));
    assert_eq!(
        info[0].url,
        "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1"
    );
}

#[test]
fn options_unauthorized_and_request() {
    let r = response("dahua_options.txt");
    assert_eq!(r.cseq(), Some("5"));
    let public: Vec<_> = r.headers.get("Public").unwrap().split(',').map(str::trim).collect();
    assert_eq!(public.len(), 10);
    assert!(public.contains(&"SET_PARAMETER"));

    let r = response("longse_unauthorized.txt");
    assert_eq!((r.status, r.reason.as_str(), r.cseq()), (401, "Unauthorized", Some("1")));
    let c = rtsp::auth::best_challenge(r.headers.get_all("WWW-Authenticate")).unwrap();
    let rtsp::auth::Challenge::Digest(d) = &c else { panic!("{c:?}") };
    assert_eq!((d.realm.as_str(), d.nonce.as_str(), d.qop.as_deref()), ("Surveillance Server", "98481030", None));
    let h = rtsp::auth::authorization("DESCRIBE", "rtsp://cam/", "admin", "secret", &c, 1);
    let server = rtsp::auth::Authenticator::new("admin", "secret", "Surveillance Server");
    assert!(server.verify("DESCRIBE", &h, "98481030"));

    let data = read("rtsp_request.txt");
    let Decoded::Request(q) = decode_all("rtsp_request.txt", &data) else { panic!() };
    let q: Request = q;
    assert_eq!(q.method, rtsp::Method::Describe);
    assert_eq!(q.cseq(), Some("1"));
    assert_eq!(q.headers.get("accept"), Some("application/sdp"));
    assert_eq!(url::parse_request_uri(&q.uri).path, "h264Preview_01_main");
}

/// All DESCRIBE replies concatenated with interleaved frames between them, fed in odd-sized chunks, as
/// a client reading a camera socket would see them.
#[test]
fn captures_as_one_stream() {
    let d = dir();
    let mut names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".txt") && !n.ends_with("_sdp.txt") && n != "README.md")
        .collect();
    names.sort();
    let mut stream = Vec::new();
    for (i, n) in names.iter().enumerate() {
        stream.extend_from_slice(&std::fs::read(d.join(n)).unwrap());
        stream.extend_from_slice(&rtsp::encode_interleaved_header(i as u8, 3));
        stream.extend_from_slice(b"abc");
    }
    let mut buf = bytes::BytesMut::new();
    let mut messages = 0;
    let mut frames = 0;
    for chunk in stream.chunks(37) {
        buf.extend_from_slice(chunk);
        while let Some(m) = rtsp::decode_buf(&mut buf).unwrap() {
            match m {
                rtsp::Message::Interleaved { payload, .. } => {
                    assert_eq!(&payload[..], b"abc");
                    frames += 1;
                }
                _ => messages += 1,
            }
        }
    }
    assert!(buf.is_empty());
    assert_eq!((messages, frames), (names.len(), names.len()));
}
