//! The sans-IO RTSP client session (`rtsp::client::RtspClient`) against the real camera replies in
//! `tests/captures/`, with no socket and on a simulated clock: the test owns `now` and moves it to each
//! deadline the machine asks for, so "after 30 s" takes no time and is exact.

use bytes::{Bytes, BytesMut};
use media::RtpPacket;
use rtsp::client::{ClientOptions, ErrorKind, Event, RtspClient, SourceUrl, Step};
use rtsp::message::{self, Message, Request};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn capture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/captures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A reply with its CSeq set to the request's (the captures carry the CSeq of their own session).
fn with_cseq(reply: &[u8], cseq: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("cseq:") {
            out.push_str(&format!("CSeq: {cseq}\r\n"));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

const OK: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 0\r\n\r\n";
const SSRC: u32 = 0x0102_0304;
const FIRST_SEQ: u16 = 1000;

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 12];
    rtp::packet::write_header(&mut h, true, pt, seq, ts, 0x1234);
    let mut v = h.to_vec();
    v.extend_from_slice(payload);
    v
}

fn interleaved(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut v = message::encode_interleaved_header(channel, data.len() as u16).to_vec();
    v.extend_from_slice(data);
    v
}

/// The camera side of one session: what the machine wrote, what it reported, and the simulated clock.
struct Camera {
    client: RtspClient,
    start: Instant,
    now: Instant,
    /// Bytes written by the client, not yet decoded.
    wire: BytesMut,
    requests: VecDeque<Request>,
    all_requests: Vec<Request>,
    interleaved: Vec<(u8, Bytes)>,
    events: Vec<Event>,
    /// Reply to the next request with input split into single bytes.
    byte_by_byte: bool,
}

impl Camera {
    fn new(url: &str) -> Camera {
        let start = Instant::now();
        let src = SourceUrl::parse(url).unwrap();
        let options = ClientOptions { ssrc: SSRC, initial_sequence: FIRST_SEQ, cname: "camrelay".into() };
        let client = RtspClient::new(src, options, start);
        let mut c = Camera {
            client,
            start,
            now: start,
            wire: BytesMut::new(),
            requests: VecDeque::new(),
            all_requests: Vec::new(),
            interleaved: Vec::new(),
            events: Vec::new(),
            byte_by_byte: false,
        };
        c.drain();
        c
    }

    /// The server side of a record session (RTSP push) of `medias`.
    fn recorder(url: &str, medias: Vec<media::Media>) -> Camera {
        let start = Instant::now();
        let src = SourceUrl::parse(url).unwrap();
        let options = ClientOptions { ssrc: SSRC, initial_sequence: FIRST_SEQ, cname: "camrelay".into() };
        let client = RtspClient::record(src, options, medias, start);
        let mut c = Camera {
            client,
            start,
            now: start,
            wire: BytesMut::new(),
            requests: VecDeque::new(),
            all_requests: Vec::new(),
            interleaved: Vec::new(),
            events: Vec::new(),
            byte_by_byte: false,
        };
        c.drain();
        c
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn drain(&mut self) {
        while let Some(b) = self.client.poll_transmit() {
            self.wire.extend_from_slice(&b);
        }
        while let Some(m) = message::decode_buf(&mut self.wire).expect("the client writes valid RTSP") {
            match m {
                Message::Request(r) => {
                    self.all_requests.push(r.clone());
                    self.requests.push_back(r);
                }
                Message::Interleaved { channel, payload } => self.interleaved.push((channel, payload)),
                Message::Response(r) => panic!("client sent a response: {r:?}"),
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// The oldest request not yet answered; it must be `method`.
    fn request(&mut self, method: &str) -> Request {
        let r = self.requests.pop_front().unwrap_or_else(|| panic!("no request; expected {method}"));
        assert_eq!(r.method.as_str(), method, "{r:?}");
        r
    }

    fn no_request(&self) {
        assert!(self.requests.is_empty(), "unexpected requests: {:?}", self.requests);
    }

    fn input(&mut self, data: &[u8]) {
        if self.byte_by_byte {
            for b in data {
                self.client.handle_input(std::slice::from_ref(b), self.now);
            }
        } else {
            self.client.handle_input(data, self.now);
        }
        self.drain();
    }

    /// Answers the oldest request (which must be `method`) with `reply`, CSeq fixed, then `then`.
    fn answer(&mut self, method: &str, reply: &[u8], then: &[u8]) -> Request {
        let r = self.request(method);
        let mut data = with_cseq(reply, r.cseq().unwrap());
        data.extend_from_slice(then);
        self.input(&data);
        r
    }

    /// Moves the simulated clock to `start + at`, waking the machine at each deadline on the way.
    fn advance_to(&mut self, at: Duration) {
        let target = self.start + at;
        while let Some(d) = self.client.poll_timeout() {
            if d > target {
                break;
            }
            self.now = self.now.max(d);
            self.client.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(target);
    }

    fn advance(&mut self, by: Duration) {
        let at = self.elapsed() + by;
        self.advance_to(at);
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn error(&mut self) -> rtsp::client::ClientError {
        let events = self.take_events();
        match events.as_slice() {
            [.., Event::Error(e)] => e.clone(),
            _ => panic!("expected an error, got {events:?}"),
        }
    }

    fn described(&mut self) -> (rtsp::client::Described, bool) {
        let events = self.take_events();
        match events.as_slice() {
            [Event::Described { described, backchannel }] => (described.clone(), *backchannel),
            _ => panic!("expected Described, got {events:?}"),
        }
    }

    /// OPTIONS and DESCRIBE answered with `options` and `describe`.
    fn describe_with(&mut self, options: &[u8], describe: &[u8]) -> (rtsp::client::Described, bool) {
        self.answer("OPTIONS", options, b"");
        self.answer("DESCRIBE", describe, b"");
        self.described()
    }

    fn rtp_events(&mut self) -> Vec<(usize, RtpPacket)> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Rtp { media, packet } => Some((media, packet)),
                _ => None,
            })
            .collect()
    }
}

/// Hikvision: OPTIONS, DESCRIBE with the backchannel `Require`, SETUP, PLAY, RTP in PLAY's packet.
fn hikvision_playing(byte_by_byte: bool) -> Camera {
    let mut cam = Camera::new("rtsp://127.0.0.1:554/Streaming/Channels/101");
    cam.byte_by_byte = byte_by_byte;
    let opt = cam.request("OPTIONS");
    assert_eq!((opt.uri.as_str(), opt.cseq()), ("rtsp://127.0.0.1:554/Streaming/Channels/101", Some("1")));
    cam.input(&with_cseq(OK, "1"));
    let (described, backchannel) = {
        let d = cam.answer("DESCRIBE", &capture("hikvision_describe.txt"), b"");
        assert_eq!(d.headers.get("Require"), Some("www.onvif.org/ver20/backchannel"));
        assert_eq!(d.headers.get("Accept"), Some("application/sdp"));
        cam.described()
    };
    assert!(backchannel, "the camera did not refuse the Require");
    assert_eq!(described.medias.len(), 1, "the ONVIF metadata track is not set up");
    assert_eq!(described.medias[0].media.to_string(), "video, recvonly, H264");
    cam.no_request();
    assert_eq!(cam.client.poll_timeout(), None, "nothing is timed while parked");
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    let setup = cam.answer("SETUP", &capture("hikvision_setup.txt"), b"");
    assert_eq!(
        setup.uri,
        "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1"
    );
    assert_eq!(setup.headers.get("Transport"), Some("RTP/AVP/TCP;unicast;interleaved=0-1"));
    assert_eq!(setup.headers.get("Require"), Some("www.onvif.org/ver20/backchannel"));
    assert_eq!(setup.headers.get("Session"), None);
    let first = interleaved(0, &rtp(96, 1, 0, &[0x65, 1, 2, 3]));
    let play = cam.answer("PLAY", &capture("hikvision_play.txt"), &first);
    assert_eq!(play.uri, "rtsp://192.168.5.106:554/Streaming/Channels/101/?transportmode=unicast&profile=Profile_1");
    assert_eq!(play.headers.get("Session"), Some("708345999"));
    assert_eq!(play.headers.get("Range"), None);
    let events = cam.take_events();
    assert!(matches!(&events[0], Event::SetUp { media: 0, transport } if transport.interleaved == Some((0, 1))));
    assert!(matches!(&events[1], Event::Playing { rtp_info: Some(i) } if i.contains("seq=24104")), "{events:?}");
    assert!(matches!(&events[2], Event::Rtp { media: 0, packet } if packet.sequence == 1 && packet.payload.len() == 4));
    assert_eq!(events.len(), 3);
    assert!(cam.client.is_playing());
    cam
}

#[test]
fn hikvision_session_end_to_end() {
    let mut cam = hikvision_playing(false);
    cam.client.teardown(cam.now);
    cam.drain();
    let t = cam.request("TEARDOWN");
    assert_eq!(t.uri, "rtsp://192.168.5.106:554/Streaming/Channels/101/?transportmode=unicast&profile=Profile_1");
    assert_eq!(t.headers.get("Session"), Some("708345999"));
    assert_eq!(cam.take_events(), vec![Event::Closed]);
    assert_eq!(cam.client.poll_timeout(), None);
    // Nothing more once closed.
    cam.input(&interleaved(0, &rtp(96, 2, 0, &[1])));
    cam.advance(Duration::from_secs(120));
    assert!(cam.take_events().is_empty());
    cam.no_request();
}

#[test]
fn replies_split_into_single_bytes() {
    let mut cam = hikvision_playing(true);
    cam.input(&interleaved(0, &rtp(96, 2, 3000, &[0x41, 9])));
    assert_eq!(cam.rtp_events().len(), 1);
}

#[test]
fn keepalive_at_half_the_session_timeout_and_receiver_reports() {
    let mut cam = hikvision_playing(false);
    let play_at = cam.elapsed();
    // RTP every 5 s keeps the no-data timeout away.
    let mut seq = 2;
    let mut feed = |cam: &mut Camera, until: Duration| {
        while cam.elapsed() + Duration::from_secs(5) <= until {
            cam.advance(Duration::from_secs(5));
            cam.input(&interleaved(0, &rtp(96, seq, 0, &[1])));
            seq += 1;
        }
        cam.advance_to(until);
    };
    // The first receiver report 1 s after PLAY's reply, on the RTCP channel.
    cam.advance_to(play_at + Duration::from_millis(999));
    assert!(cam.interleaved.is_empty());
    cam.advance_to(play_at + Duration::from_secs(1));
    assert_eq!(cam.interleaved.len(), 1);
    let (ch, rr) = &cam.interleaved[0];
    assert_eq!(*ch, 1);
    assert_eq!(rr[1], 201, "RR");
    assert_eq!(u32::from_be_bytes([rr[4], rr[5], rr[6], rr[7]]), SSRC);
    assert!(rr.windows(8).any(|w| w == b"camrelay"));
    // Hikvision's `Session: ...;timeout=60` and no `Public`: OPTIONS every 30 s.
    feed(&mut cam, play_at + Duration::from_millis(29_999));
    cam.no_request();
    assert_eq!(cam.interleaved.len(), 6, "reports at 1, 6, 11, 16, 21, 26 s");
    feed(&mut cam, play_at + Duration::from_secs(30));
    let k = cam.request("OPTIONS");
    assert_eq!(k.uri, "rtsp://192.168.5.106:554/Streaming/Channels/101/?transportmode=unicast&profile=Profile_1");
    // The camera's answer (even an error) changes nothing.
    cam.input(&with_cseq(b"RTSP/1.0 454 Session Not Found\r\nCSeq: 0\r\n\r\n", k.cseq().unwrap()));
    feed(&mut cam, play_at + Duration::from_secs(59));
    cam.no_request();
    feed(&mut cam, play_at + Duration::from_secs(60));
    cam.request("OPTIONS");
    assert!(cam.take_events().iter().all(|e| matches!(e, Event::Rtp { .. })));
    assert!(cam.client.is_playing());
}

#[test]
fn dahua_keepalive_is_get_parameter() {
    let mut cam = Camera::new("rtsp://127.0.0.1:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif");
    let (described, _) =
        cam.describe_with(&capture("dahua_options.txt"), &capture("dahua_describe_h264_aac_onvif.txt"));
    assert_eq!(described.medias.len(), 2);
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    let base = "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif/";
    let s1 = cam.answer("SETUP", &capture("dahua_setup.txt"), b"");
    let s2 = cam.answer("SETUP", &capture("dahua_setup.txt"), b"");
    assert_eq!((s1.uri, s2.uri), (format!("{base}trackID=0"), format!("{base}trackID=1")));
    assert_eq!(s2.headers.get("Transport"), Some("RTP/AVP/TCP;unicast;interleaved=2-3"));
    assert_eq!(s2.headers.get("Session"), Some("634214675641"));
    let play = cam.answer("PLAY", &capture("dahua_play.txt"), b"");
    assert_eq!((play.uri.as_str(), play.headers.get("Session")), (base, Some("634214675641")));
    let at = cam.elapsed();
    for i in 0..6u16 {
        cam.advance_to(at + Duration::from_secs(5 * u64::from(i + 1)));
        cam.input(&interleaved(0, &rtp(96, i, 0, &[1])));
    }
    let k = cam.request("GET_PARAMETER");
    assert_eq!((k.uri.as_str(), k.headers.get("Session")), (base, Some("634214675641")));
}

#[test]
fn keepalive_follows_a_short_session_timeout() {
    let mut cam = Camera::new("rtsp://127.0.0.1:554/live/0#backchannel=0");
    let d = cam.answer("OPTIONS", OK, b"");
    assert_eq!(d.headers.get("Require"), None);
    let d = cam.answer("DESCRIBE", &capture("macrovideo_describe.txt"), b"");
    assert_eq!(d.headers.get("Require"), None);
    let (_, backchannel) = cam.described();
    assert!(!backchannel);
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    let setup =
        b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: 77;timeout=4\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n";
    let s = cam.answer("SETUP", setup, b"");
    assert_eq!(s.uri, "rtsp://127.0.0.1:554/live/0/track1");
    assert_eq!(s.headers.get("Require"), None, "no Require when the backchannel is off");
    cam.answer("PLAY", OK, b"");
    let at = cam.elapsed();
    cam.advance_to(at + Duration::from_millis(1999));
    cam.no_request();
    cam.advance_to(at + Duration::from_secs(2));
    // As before the machine: `ClientSession` puts no Session on OPTIONS.
    assert_eq!(cam.request("OPTIONS").uri, "rtsp://127.0.0.1:554/live/0");
    cam.advance_to(at + Duration::from_secs(4));
    cam.request("OPTIONS");
}

#[test]
fn no_data_timeout_fires_on_the_simulated_clock() {
    let mut cam = hikvision_playing(false);
    let at = cam.elapsed();
    cam.advance_to(at + Duration::from_secs(10));
    cam.input(&interleaved(0, &rtp(96, 2, 0, &[1])));
    // RTCP and unknown channels are not data.
    cam.input(&interleaved(1, b"\x80\xc8\x00\x01abcd"));
    cam.input(&interleaved(7, &rtp(96, 3, 0, &[1])));
    let events = cam.take_events();
    assert!(matches!(events.as_slice(), [Event::Rtp { media: 0, .. }, Event::Rtcp { media: 0, .. }]), "{events:?}");
    // Not valid RTP: not data either.
    cam.input(&interleaved(0, b"\x00\x01"));
    assert_eq!(cam.client.poll_timeout().map(|d| d <= cam.start + at + Duration::from_secs(25)), Some(true));
    cam.advance_to(at + Duration::from_millis(24_999));
    assert!(cam.take_events().is_empty());
    cam.advance_to(at + Duration::from_secs(25));
    let e = cam.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Play, ErrorKind::Timeout));
    assert_eq!(e.to_string(), "PLAY: no data from camera for 15s");
    assert_eq!(cam.client.poll_timeout(), None);
    // `#timeout=` sets it.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/live/0#timeout=3#backchannel=0");
    cam.describe_with(OK, &capture("macrovideo_describe.txt"));
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    cam.answer("SETUP", &capture("luckfox_rkipc_setup_tcp.txt"), b"");
    cam.answer("PLAY", OK, b"");
    let at = cam.elapsed();
    cam.advance_to(at + Duration::from_secs(3));
    assert_eq!(cam.error().to_string(), "PLAY: no data from camera for 3s");
}

#[test]
fn request_timeout() {
    let mut cam = Camera::new("rtsp://127.0.0.1:554/x");
    cam.request("OPTIONS");
    assert_eq!(cam.client.poll_timeout(), Some(cam.start + Duration::from_secs(5)));
    cam.advance_to(Duration::from_millis(4999));
    assert!(cam.take_events().is_empty());
    cam.advance_to(Duration::from_secs(5));
    let e = cam.error();
    assert_eq!((e.kind.clone(), e.to_string()), (ErrorKind::Timeout, "OPTIONS: no response within 5s".to_string()));
    let mut cam = Camera::new("rtsp://127.0.0.1:554/x#timeout=1");
    cam.advance_to(Duration::from_secs(1));
    assert_eq!(cam.error().to_string(), "OPTIONS: no response within 1s");
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn unauthorized_then_digest_retry() {
    let mut cam = Camera::new("rtsp://admin:p%40ss@127.0.0.1:554/x#backchannel=0");
    let first = cam.answer("OPTIONS", &capture("longse_unauthorized.txt"), b"");
    assert_eq!(first.headers.get("Authorization"), None);
    let retry = cam.request("OPTIONS");
    assert_eq!(retry.cseq(), Some("2"));
    let auth = retry.headers.get("Authorization").unwrap();
    assert!(auth.starts_with("Digest username=\"admin\", realm=\"Surveillance Server\", nonce=\"98481030\""), "{auth}");
    let ha1 = md5_hex("admin:Surveillance Server:p@ss");
    let ha2 = md5_hex(&format!("OPTIONS:{}", retry.uri));
    assert!(auth.contains(&format!("response=\"{}\"", md5_hex(&format!("{ha1}:98481030:{ha2}")))), "{auth}");
    cam.input(&with_cseq(OK, "2"));
    // Later requests answer the same challenge.
    let d = cam.answer("DESCRIBE", &capture("bunny_describe.txt"), b"");
    assert!(d.headers.get("Authorization").unwrap().contains("nonce=\"98481030\""));
    cam.described();
    // A 401 at SETUP is answered too.
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    cam.answer("SETUP", &capture("longse_unauthorized.txt"), b"");
    let s = cam.answer("SETUP", &capture("bunny_setup.txt"), b"");
    assert!(s.headers.get("Authorization").is_some());
    assert_eq!(s.headers.get("Session"), Some("1642021126"), "Wowza opened the session at DESCRIBE");
}

#[test]
fn wrong_password_and_no_credentials_are_auth_errors() {
    let mut cam = Camera::new("rtsp://admin:hunter2@127.0.0.1:554/x");
    cam.answer("OPTIONS", &capture("longse_unauthorized.txt"), b"");
    cam.answer("OPTIONS", &capture("longse_unauthorized.txt"), b"");
    let e = cam.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Options, ErrorKind::Auth));
    assert_eq!(e.to_string(), "OPTIONS: 401 Unauthorized: wrong username or password");
    cam.no_request();

    let mut cam = Camera::new("rtsp://127.0.0.1:554/x");
    cam.answer("OPTIONS", OK, b"");
    cam.answer("DESCRIBE", &capture("longse_unauthorized.txt"), b"");
    let e = cam.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Describe, ErrorKind::Auth));
    assert!(e.message.contains("needs a username and password"), "{e}");
}

#[test]
fn stale_nonce_is_renewed() {
    let stale = |nonce: &str| {
        format!("RTSP/1.0 401 Unauthorized\r\nCSeq: 0\r\nWWW-Authenticate: Digest realm=\"Surveillance Server\", nonce=\"{nonce}\", stale=TRUE\r\n\r\n")
            .into_bytes()
    };
    let mut cam = Camera::new("rtsp://admin:pw@127.0.0.1:554/x#backchannel=0");
    cam.answer("OPTIONS", &capture("longse_unauthorized.txt"), b"");
    // The retry's nonce expired meanwhile: not a wrong password, answer the new one.
    cam.answer("OPTIONS", &stale("n2"), b"");
    let r = cam.answer("OPTIONS", OK, b"");
    assert!(r.headers.get("Authorization").unwrap().contains("nonce=\"n2\""));
    // Later, mid-session: the nonce goes stale again.
    cam.answer("DESCRIBE", &stale("n3"), b"");
    let r = cam.answer("DESCRIBE", &capture("bunny_describe.txt"), b"");
    assert!(r.headers.get("Authorization").unwrap().contains("nonce=\"n3\""));
    let (d, _) = cam.described();
    assert_eq!(d.medias.len(), 2);
}

#[test]
fn backchannel_refused_with_a_status_falls_back_on_the_same_connection() {
    let mut cam = Camera::new("rtsp://127.0.0.1:554/x");
    cam.answer("OPTIONS", OK, b"");
    let d = cam.answer("DESCRIBE", b"RTSP/1.0 551 Option not supported\r\nCSeq: 0\r\n\r\n", b"");
    assert!(d.headers.get("Require").is_some());
    let d = cam.answer("DESCRIBE", &capture("dahua_describe_h265_pcma.txt"), b"");
    assert_eq!(d.headers.get("Require"), None);
    let (described, backchannel) = cam.described();
    assert!(!backchannel);
    assert_eq!(described.medias.len(), 2);
    // No Require on SETUP and PLAY either.
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    assert_eq!(cam.answer("SETUP", &capture("dahua_setup.txt"), b"").headers.get("Require"), None);
}

#[test]
fn backchannel_refused_by_closing_or_silence_falls_back_on_a_new_connection() {
    for how in ["close", "read error", "silence", "garbage"] {
        let mut cam = Camera::new("rtsp://127.0.0.1:554/x");
        cam.answer("OPTIONS", OK, b"");
        let d = cam.request("DESCRIBE");
        assert!(d.headers.get("Require").is_some());
        match how {
            "close" => cam.client.handle_disconnect("connection closed by camera", cam.now),
            "read error" => cam.client.handle_disconnect("read: connection reset by peer", cam.now),
            "silence" => cam.advance(Duration::from_secs(5)),
            _ => cam.client.handle_input(b"\x00\x00\x00", cam.now),
        }
        cam.drain();
        assert_eq!(cam.take_events(), vec![Event::Reconnect], "{how}");
        assert_eq!(cam.client.poll_timeout(), None, "{how}: waits for the new connection");
        cam.no_request();
        cam.client.handle_reconnected(cam.now);
        cam.drain();
        let d = cam.answer("DESCRIBE", &capture("dahua_describe_h265_pcma.txt"), b"");
        assert_eq!(d.headers.get("Require"), None, "{how}");
        let (_, backchannel) = cam.described();
        assert!(!backchannel);
    }
    // Without the backchannel request, a close is an error.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/x#backchannel=0");
    cam.answer("OPTIONS", OK, b"");
    cam.client.handle_disconnect("connection closed by camera", cam.now);
    cam.drain();
    let e = cam.error();
    assert_eq!(
        (e.kind.clone(), e.to_string()),
        (ErrorKind::Network, "DESCRIBE: connection closed by camera".to_string())
    );
}

const BACKCHANNEL_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n\
m=audio 0 RTP/AVP 8\r\na=control:trackID=0\r\na=rtpmap:8 PCMA/8000\r\na=recvonly\r\n\
m=audio 0 RTP/AVP 0\r\na=control:trackID=1\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n";

#[test]
fn onvif_backchannel_accepted_rtp_in_and_out() {
    let describe = format!(
        "RTSP/1.0 200 OK\r\nCSeq: 0\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{BACKCHANNEL_SDP}",
        BACKCHANNEL_SDP.len()
    );
    let mut cam = Camera::new("rtsp://127.0.0.1:8554/x");
    let (described, backchannel) = cam.describe_with(OK, describe.as_bytes());
    assert!(backchannel);
    let kinds: Vec<String> = described.medias.iter().map(|m| m.media.to_string()).collect();
    assert_eq!(kinds, ["audio, recvonly, PCMA", "audio, sendonly, PCMU"]);
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    let setup = |ch: &str| {
        format!("RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: abc;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved={ch}\r\n\r\n").into_bytes()
    };
    // RTP before PLAY's reply is kept and delivered once playing.
    let early = interleaved(0, &rtp(8, 100, 0, &[0xd5; 160]));
    let s = cam.answer("SETUP", &setup("0-1"), &early);
    assert_eq!(s.headers.get("Require"), Some("www.onvif.org/ver20/backchannel"));
    cam.answer("SETUP", &setup("2-3"), b"");
    let play = cam.answer("PLAY", b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: abc\r\n\r\n", b"");
    assert_eq!(play.headers.get("Require"), Some("www.onvif.org/ver20/backchannel"), "GStreamer's ONVIF PLAY needs it");
    let events = cam.take_events();
    assert!(matches!(events.last(), Some(Event::Rtp { media: 0, packet }) if packet.sequence == 100), "{events:?}");
    // The camera's RTP on the backchannel's channel is not ours to read.
    cam.input(&interleaved(2, &rtp(0, 1, 0, &[1])));
    assert!(cam.rtp_events().is_empty());
    // Two-way audio out: our sequence numbers and SSRC, the camera's payload type, channel 2.
    let pkt = |ts: u32, len: usize| RtpPacket {
        marker: false,
        payload_type: 96,
        sequence: 9,
        timestamp: ts,
        ssrc: 1,
        payload: Bytes::from(vec![0x7f; len]),
    };
    cam.client.send_backchannel(1, &[pkt(0, 160), pkt(160, 80)]);
    cam.client.send_backchannel(0, &[pkt(0, 1)]); // not a backchannel: ignored
    cam.drain();
    let sent: Vec<(u8, RtpPacket)> =
        cam.interleaved.iter().map(|(ch, p)| (*ch, rtp::packet::parse_bytes(p.clone()).unwrap())).collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|(ch, p)| *ch == 2 && p.payload_type == 0 && p.ssrc == SSRC));
    assert_eq!((sent[0].1.sequence, sent[1].1.sequence), (FIRST_SEQ, FIRST_SEQ + 1));
    assert_eq!((sent[0].1.timestamp, sent[1].1.payload.len()), (0, 80));
    // Receiver reports only for the received media.
    cam.interleaved.clear();
    cam.advance(Duration::from_secs(1));
    assert_eq!(cam.interleaved.iter().map(|(ch, _)| *ch).collect::<Vec<_>>(), [1]);
}

#[test]
fn teardown_only_when_the_camera_opened_a_session() {
    // Stopped while SETUP is unanswered, no session yet: nothing to tear down.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/live/0");
    cam.describe_with(OK, &capture("macrovideo_describe.txt"));
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    cam.request("SETUP");
    cam.client.teardown(cam.now);
    cam.drain();
    cam.no_request();
    assert_eq!(cam.take_events(), vec![Event::Closed]);
    // Wowza opens the session at DESCRIBE: TEARDOWN it even before PLAY.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/vod/mp4:BigBuckBunny_115k.mov");
    cam.describe_with(OK, &capture("bunny_describe.txt"));
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    cam.answer("SETUP", &capture("bunny_setup.txt"), b"");
    cam.client.teardown(cam.now);
    cam.drain();
    let t = cam.request("SETUP");
    assert_eq!(t.headers.get("Session"), Some("1642021126"));
    let t = cam.request("TEARDOWN");
    assert_eq!(t.uri, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/");
    assert_eq!(t.headers.get("Session"), Some("1642021126"));
    assert!(cam.take_events().ends_with(&[Event::Closed]));
}

#[test]
fn udp_transport() {
    let mut cam = Camera::new("rtsp://127.0.0.1:554/camera#transport=udp");
    assert!(cam.client.wants_udp());
    cam.describe_with(OK, &capture("h264dvr_describe.txt"));
    // Too few ports is an error, not a panic.
    let mut short = Camera::new("rtsp://127.0.0.1:554/camera#transport=udp");
    short.describe_with(OK, &capture("h264dvr_describe.txt"));
    short.client.play(vec![(5000, 5001)], short.now);
    short.drain();
    assert_eq!(short.error().step, Step::Setup);

    cam.client.play(vec![(5000, 5001), (5002, 5003)], cam.now);
    cam.drain();
    let s1 = cam.answer("SETUP", &capture("h264dvr_setup_video.txt"), b"");
    assert_eq!(s1.uri, "rtsp://127.0.0.1:554/camera/trackID=3");
    assert_eq!(s1.headers.get("Transport"), Some("RTP/AVP;unicast;client_port=5000-5001"));
    let s2 = cam.answer("SETUP", &capture("h264dvr_setup_audio.txt"), b"");
    assert_eq!(s2.headers.get("Transport"), Some("RTP/AVP;unicast;client_port=5002-5003"));
    assert_eq!(s2.headers.get("Session"), Some("231970"));
    // A datagram before PLAY's reply waits for it.
    cam.client.handle_datagram(0, false, Bytes::from(rtp(96, 7, 0, &[0x65])), cam.now);
    cam.answer("PLAY", &capture("h264dvr_play.txt"), b"");
    let events = cam.take_events();
    let ports: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::SetUp { media, transport } => Some((*media, transport.server_port, transport.source.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        ports,
        [(0, Some((40004, 40005)), Some("127.0.0.1".into())), (1, Some((40006, 40007)), Some("127.0.0.1".into()))]
    );
    assert!(matches!(events.last(), Some(Event::Rtp { media: 0, packet }) if packet.sequence == 7));
    cam.client.handle_datagram(1, false, Bytes::from(rtp(8, 1, 0, &[0xd5])), cam.now);
    cam.client.handle_datagram(1, true, Bytes::from_static(b"\x80\xc8\x00\x00"), cam.now);
    cam.client.handle_datagram(9, false, Bytes::from(rtp(8, 1, 0, &[0xd5])), cam.now);
    cam.drain();
    let events = cam.take_events();
    assert!(matches!(events.as_slice(), [Event::Rtp { media: 1, .. }, Event::Rtcp { media: 1, .. }]), "{events:?}");
    // Receiver reports go out as datagrams to each media's RTCP port.
    cam.advance(Duration::from_secs(1));
    let mut dgrams = Vec::new();
    while let Some(d) = cam.client.poll_datagram() {
        dgrams.push((d.media, d.rtcp, d.payload[1]));
    }
    assert_eq!(dgrams, [(0, true, 201), (1, true, 201)]);
    assert!(cam.interleaved.is_empty());
}

#[test]
fn bad_replies_are_typed_errors() {
    // Garbage instead of a reply.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/x");
    cam.request("OPTIONS");
    cam.input(b"\x00garbage");
    let e = cam.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Options, ErrorKind::Protocol));
    assert!(e.message.starts_with("bad data from camera"), "{e}");
    // A bad SDP.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/x#backchannel=0");
    cam.answer("OPTIONS", OK, b"");
    cam.answer("DESCRIBE", b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nContent-Length: 5\r\n\r\nhello", b"");
    let e = cam.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Describe, ErrorKind::Protocol));
    assert!(e.message.contains("bad SDP"), "{e}");
    // A camera refusing OPTIONS still streams; refusing DESCRIBE is an error with its status.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/x#backchannel=0");
    cam.answer("OPTIONS", b"RTSP/1.0 501 Not Implemented\r\nCSeq: 0\r\n\r\n", b"");
    cam.answer("DESCRIBE", b"RTSP/1.0 404 Not Found\r\nCSeq: 0\r\n\r\n", b"");
    let e = cam.error();
    assert_eq!((e.kind.clone(), e.to_string()), (ErrorKind::Status(404), "DESCRIBE: 404 Not Found".to_string()));
    // SETUP answered with another lower transport.
    let mut cam = Camera::new("rtsp://127.0.0.1:554/live/0#backchannel=0");
    cam.describe_with(OK, &capture("macrovideo_describe.txt"));
    cam.client.play(Vec::new(), cam.now);
    cam.drain();
    cam.answer("SETUP", &capture("luckfox_rkipc_setup_udp.txt"), b"");
    let e = cam.error();
    assert_eq!((e.step, e.kind), (Step::Setup, ErrorKind::Protocol));
    // The camera closes while playing.
    let mut cam = hikvision_playing(false);
    cam.client.handle_disconnect("connection closed by camera", cam.now);
    cam.drain();
    assert_eq!(cam.error().to_string(), "PLAY: connection closed by camera");
}

#[test]
fn every_capture_fed_as_any_reply_never_panics() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/captures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    for name in &names {
        for udp in [false, true] {
            let url = if udp { "rtsp://u:p@127.0.0.1:554/x#transport=udp" } else { "rtsp://u:p@127.0.0.1:554/x" };
            let mut cam = Camera::new(url);
            let data = capture(name);
            for _ in 0..8 {
                if let Some(r) = cam.requests.pop_front() {
                    cam.input(&with_cseq(&data, r.cseq().unwrap_or("0")));
                }
                if cam.events.iter().any(|e| matches!(e, Event::Described { .. })) {
                    cam.client.play(vec![(5000, 5001); 4], cam.now);
                    cam.drain();
                }
                cam.advance(Duration::from_secs(3));
            }
            cam.client.teardown(cam.now);
            cam.drain();
        }
    }
}

fn push_medias() -> Vec<media::Media> {
    use media::{Codec, Direction, Kind, Media};
    let mut h264 = Codec::new("H264", 90000, 0, 96);
    h264.fmtp = "packetization-mode=1;sprop-parameter-sets=Z2QAH6zZQFAFuhAAAAMAEAAAAwPI8YMZYA==,aOvjyyLA".into();
    let aac = Codec::new("MPEG4-GENERIC", 48000, 2, 97);
    vec![
        Media::new(Kind::Video, Direction::SendOnly, vec![h264]),
        Media::new(Kind::Audio, Direction::SendOnly, vec![aac]),
    ]
}

#[test]
fn record_session_announce_digest_setup_record_and_rtp_out() {
    let mut srv = Camera::recorder("rtsp://pub:s3cret@127.0.0.1:8554/live/cam", push_medias());
    srv.answer("OPTIONS", OK, b"");
    // The ANNOUNCE carries the SDP of what we send; a 401 is answered once with Digest and the same body.
    let unauthorized =
        b"RTSP/1.0 401 Unauthorized\r\nCSeq: 0\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"abc\"\r\n\r\n";
    let first = srv.answer("ANNOUNCE", unauthorized, b"");
    assert_eq!(first.uri, "rtsp://127.0.0.1:8554/live/cam");
    assert_eq!(first.headers.get("Content-Type"), Some("application/sdp"));
    let sdp = rtsp::sdp::parse(&first.body).unwrap();
    assert_eq!(sdp.medias.len(), 2);
    assert_eq!(sdp.medias[0].codecs[0].name, "H264");
    assert_eq!(sdp.medias[0].control, "trackID=0");
    assert_eq!(sdp.medias[1].codecs[0].name, "MPEG4-GENERIC");
    let retry = srv.answer("ANNOUNCE", OK, b"");
    let auth = retry.headers.get("Authorization").unwrap();
    let ha1 = md5_hex("pub:r:s3cret");
    let ha2 = md5_hex(&format!("ANNOUNCE:{}", retry.uri));
    assert!(auth.contains(&format!("response=\"{}\"", md5_hex(&format!("{ha1}:abc:{ha2}")))), "{auth}");
    assert_eq!(retry.body, first.body);
    // SETUP per media: TCP interleaved, mode=record; the server's session id is used from then on.
    let s0 = srv.answer(
        "SETUP",
        b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: 77;timeout=20\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n",
        b"",
    );
    assert_eq!(s0.uri, "rtsp://127.0.0.1:8554/live/cam/trackID=0");
    let t = s0.headers.get("Transport").unwrap();
    assert!(t.contains("RTP/AVP/TCP") && t.contains("interleaved=0-1") && t.contains("mode=record"), "{t}");
    let s1 = srv.answer("SETUP", b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: 77\r\n\r\n", b"");
    assert_eq!(s1.uri, "rtsp://127.0.0.1:8554/live/cam/trackID=1");
    assert!(s1.headers.get("Transport").unwrap().contains("interleaved=2-3"));
    assert_eq!(s1.headers.get("Session"), Some("77"));
    // Nothing is sent before RECORD is answered.
    let pkt = RtpPacket {
        marker: true,
        payload_type: 33,
        sequence: 9,
        timestamp: 4500,
        ssrc: 1,
        payload: Bytes::from_static(&[0x65, 1, 2, 3]),
    };
    assert_eq!(srv.client.send_rtp(0, std::slice::from_ref(&pkt)), 0);
    let rec = srv.answer("RECORD", OK, b"");
    assert_eq!(rec.uri, "rtsp://127.0.0.1:8554/live/cam");
    assert_eq!(rec.headers.get("Session"), Some("77"));
    let events = srv.take_events();
    assert!(
        matches!(&events[..], [Event::SetUp { media: 0, .. }, Event::SetUp { media: 1, .. }, Event::Recording]),
        "{events:?}"
    );
    // RTP goes out interleaved with the session's payload type, sequence and SSRC (one per media).
    assert_eq!(srv.client.send_rtp(0, std::slice::from_ref(&pkt)), 4 + 12 + 4);
    assert!(srv.client.send_rtp(1, std::slice::from_ref(&pkt)) > 0);
    srv.drain();
    assert_eq!(srv.interleaved.len(), 2);
    let (ch, data) = &srv.interleaved[0];
    let p = rtp::packet::parse_bytes(data.clone()).unwrap();
    assert_eq!((*ch, p.payload_type, p.sequence, p.ssrc, p.timestamp), (0, 96, FIRST_SEQ, SSRC, 4500));
    assert_eq!(&p.payload[..], &[0x65, 1, 2, 3]);
    let (ch, data) = &srv.interleaved[1];
    let p = rtp::packet::parse_bytes(data.clone()).unwrap();
    assert_eq!((*ch, p.payload_type, p.ssrc), (2, 97, SSRC + 1));
    // A sender report on media 0's RTCP channel counts what went out there.
    srv.client.send_sender_report(0, 0x1234_5678_9abc_def0, 4500);
    srv.drain();
    let (ch, data) = &srv.interleaved[2];
    assert_eq!(*ch, 1);
    let expected = rtp::rtcp::SenderReport {
        ssrc: SSRC,
        ntp: 0x1234_5678_9abc_def0,
        rtp_timestamp: 4500,
        packet_count: 1,
        octet_count: 4,
    };
    assert_eq!(rtp::rtcp::parse_compound(data).unwrap().sender_reports, vec![expected]);
    // Keep-alives at half the session timeout; no data timeout while we are the sender.
    srv.advance(Duration::from_secs(60));
    assert!(srv.take_events().is_empty());
    assert!(srv.requests.len() >= 5, "keep-alives: {:?}", srv.requests);
    assert!(srv.requests.iter().all(|r| r.method.as_str() == "OPTIONS"));
    srv.requests.clear();
    srv.client.teardown(srv.now);
    srv.drain();
    srv.request("TEARDOWN");
    assert_eq!(srv.take_events(), vec![Event::Closed]);
}

#[test]
fn record_refused_is_a_typed_error_of_its_step() {
    let mut srv = Camera::recorder("rtsp://127.0.0.1:8554/cam", push_medias());
    srv.answer("OPTIONS", OK, b"");
    srv.answer("ANNOUNCE", b"RTSP/1.0 401 Unauthorized\r\nCSeq: 0\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n", b"");
    let e = srv.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Announce, ErrorKind::Auth), "{e}");
    assert!(e.to_string().starts_with("ANNOUNCE: 401"), "{e}");

    let mut srv = Camera::recorder("rtsp://127.0.0.1:8554/cam", push_medias());
    srv.answer("OPTIONS", b"RTSP/1.0 501 Not Implemented\r\nCSeq: 0\r\n\r\n", b"");
    srv.answer("ANNOUNCE", OK, b"");
    srv.answer("SETUP", OK, b"");
    srv.answer("SETUP", OK, b"");
    srv.answer("RECORD", b"RTSP/1.0 455 Method Not Valid in This State\r\nCSeq: 0\r\n\r\n", b"");
    let e = srv.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Record, ErrorKind::Status(455)), "{e}");

    let mut srv = Camera::recorder("rtsp://127.0.0.1:8554/cam", push_medias());
    srv.answer("OPTIONS", OK, b"");
    srv.advance(Duration::from_secs(6));
    let e = srv.error();
    assert_eq!((e.step, e.kind.clone()), (Step::Announce, ErrorKind::Timeout), "{e}");
}
