//! The client session against the crate's own server session in memory (play and publish, plain and
//! digest handshakes, in bulk and byte by byte), and against canned server bytes (refusals, pings,
//! window acknowledgements, chunk size changes, aggregates, timeouts, garbage).

use bytes::{BufMut, BytesMut};
use rtmp::client::{
    ClientConfig, ClientError, ClientEvent, ClientMode, RejectKind, RtmpClientSession, RtmpUrl, SendError,
};
use rtmp::handshake::{self, Filler, PACKET_SIZE};
use rtmp::message as msg;
use rtmp::{Amf0Reader, Amf0Value, ChunkReader, ChunkWriter, MediaKind, RtmpServerSession, ServerConfig, ServerEvent};
use std::time::{Duration, Instant};

fn config(mode: ClientMode, url: &str) -> ClientConfig {
    ClientConfig::new(mode, &RtmpUrl::parse(url).unwrap())
}

/// Moves bytes both ways until neither side has anything to say; returns the events of each side.
fn pump(
    c: &mut RtmpClientSession,
    s: &mut RtmpServerSession,
    now: Instant,
    bytewise: bool,
) -> (Vec<ClientEvent>, Vec<ServerEvent>) {
    let (mut ce, mut se) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(b) = c.poll_transmit() {
            moved = true;
            if bytewise {
                for x in b.iter() {
                    s.handle_input(now, std::slice::from_ref(x));
                }
            } else {
                s.handle_input(now, &b);
            }
        }
        while let Some(b) = s.poll_transmit() {
            moved = true;
            if bytewise {
                for x in b.iter() {
                    c.handle_input(now, std::slice::from_ref(x));
                }
            } else {
                c.handle_input(now, &b);
            }
        }
        while let Some(e) = s.poll_event() {
            moved = true;
            match &e {
                ServerEvent::Publish { .. } => s.accept_publish(),
                ServerEvent::Play { .. } => s.accept_play(),
                _ => {}
            }
            se.push(e);
        }
        while let Some(e) = c.poll_event() {
            moved = true;
            ce.push(e);
        }
        if !moved {
            return (ce, se);
        }
    }
}

#[test]
fn publish_to_the_server_session() {
    for (digest, bytewise) in [(false, false), (true, false), (false, true), (true, true)] {
        let now = Instant::now();
        let mut cfg = config(ClientMode::Publish, "rtmp://127.0.0.1/live/cam?user=a&pass=b");
        cfg.digest_handshake = digest;
        let mut c = RtmpClientSession::new(cfg, now);
        let mut s = RtmpServerSession::new(ServerConfig { window_ack_size: 5000, ..ServerConfig::default() }, now);
        assert_eq!(c.send_media(MediaKind::Video, 0, &[1]), Err(SendError::NotPublishing));
        let (ce, se) = pump(&mut c, &mut s, now, bytewise);
        assert_eq!(ce, vec![ClientEvent::Connected { server: None }, ClientEvent::Publishing], "{se:?}");
        assert_eq!(
            se,
            vec![
                ServerEvent::Connect { app: "live".into(), tc_url: Some("rtmp://127.0.0.1:1935/live".into()) },
                ServerEvent::Publish { stream_key: "cam?user=a&pass=b".into() },
            ]
        );
        assert!(c.is_publishing() && s.is_publishing());

        // Metadata (sent as @setDataFrame, the server strips it), a keyframe larger than the chunk
        // size, audio with an extended timestamp; enough bytes to make the server acknowledge.
        let meta = rtmp::amf0::encode_all(&[
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(320.0))]),
        ]);
        c.send_media(MediaKind::Data, 0, &meta).unwrap();
        let video: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
        c.send_media(MediaKind::Video, 40, &video).unwrap();
        c.send_media(MediaKind::Audio, 0x0100_0000, &[0xAF, 1, 2, 3]).unwrap();
        let (ce, se) = pump(&mut c, &mut s, now, bytewise);
        assert!(ce.is_empty(), "{ce:?}");
        assert_eq!(se.len(), 3, "{se:?}");
        assert_eq!(se[0], ServerEvent::Media { kind: MediaKind::Data, timestamp: 0, payload: meta.freeze() });
        assert_eq!(se[1], ServerEvent::Media { kind: MediaKind::Video, timestamp: 40, payload: video.into() });
        assert_eq!(
            se[2],
            ServerEvent::Media { kind: MediaKind::Audio, timestamp: 0x0100_0000, payload: vec![0xAF, 1, 2, 3].into() }
        );

        // close(): FCUnpublish + deleteStream end the server's session too.
        c.close();
        let (ce, se) = pump(&mut c, &mut s, now, bytewise);
        assert_eq!(ce, vec![ClientEvent::Closed { reason: "closed by us".into() }]);
        assert_eq!(se, vec![ServerEvent::Closed]);
    }
}

#[test]
fn play_from_the_server_session() {
    for (digest, bytewise) in [(false, false), (true, true)] {
        let now = Instant::now();
        let mut cfg = config(ClientMode::Play, "rtmp://127.0.0.1:1935/live/cam");
        cfg.digest_handshake = digest;
        let mut c = RtmpClientSession::new(cfg, now);
        let mut s = RtmpServerSession::new(ServerConfig::default(), now);
        let (ce, se) = pump(&mut c, &mut s, now, bytewise);
        assert_eq!(se.last(), Some(&ServerEvent::Play { stream_key: "cam".into() }), "{se:?}");
        assert!(ce.contains(&ClientEvent::Playing), "{ce:?}");
        assert!(
            ce.contains(&ClientEvent::Status {
                code: "NetStream.Play.Reset".into(),
                description: "Playing and resetting".into()
            }),
            "{ce:?}"
        );
        // |RtmpSampleAccess (a data message) is not media.
        assert!(!ce.iter().any(|e| matches!(e, ClientEvent::Media { .. })), "{ce:?}");

        let meta = rtmp::amf0::encode_all(&[Amf0Value::string("onMetaData"), Amf0Value::EcmaArray(vec![])]);
        s.send_media(MediaKind::Data, 0, &meta).unwrap();
        let big = vec![0x17u8; 50_000];
        s.send_media(MediaKind::Video, 0, &big).unwrap();
        s.send_media(MediaKind::Audio, 21, &[0xAF, 1]).unwrap();
        let (ce, _) = pump(&mut c, &mut s, now, bytewise);
        assert_eq!(
            ce,
            vec![
                ClientEvent::Media { kind: MediaKind::Data, timestamp: 0, payload: meta.freeze() },
                ClientEvent::Media { kind: MediaKind::Video, timestamp: 0, payload: big.into() },
                ClientEvent::Media { kind: MediaKind::Audio, timestamp: 21, payload: vec![0xAF, 1].into() },
            ]
        );
        // The server's close (Stream EOF) ends the play.
        s.close();
        let (ce, _) = pump(&mut c, &mut s, now, bytewise);
        assert_eq!(ce, vec![ClientEvent::Closed { reason: "the server ended the stream (Stream EOF)".into() }]);
        assert!(c.is_ended());
    }
}

#[test]
fn refusals_by_the_server_session_are_typed() {
    for (mode, why, kind, code) in [
        (ClientMode::Play, "stream not found: cam", RejectKind::NotFound, "NetStream.Play.StreamNotFound"),
        (ClientMode::Play, "not authorized", RejectKind::Auth, "NetStream.Play.StreamNotFound"),
        (ClientMode::Publish, "not authorized", RejectKind::Auth, "NetStream.Publish.BadName"),
        (ClientMode::Publish, "the name is taken", RejectKind::BadName, "NetStream.Publish.BadName"),
    ] {
        let now = Instant::now();
        let mut c = RtmpClientSession::new(config(mode, "rtmp://h/live/cam"), now);
        let mut s = RtmpServerSession::new(ServerConfig::default(), now);
        // Drive until the server asks, then refuse.
        loop {
            let mut asked = false;
            while let Some(b) = c.poll_transmit() {
                s.handle_input(now, &b);
            }
            while let Some(e) = s.poll_event() {
                asked |= matches!(e, ServerEvent::Publish { .. } | ServerEvent::Play { .. });
            }
            while let Some(b) = s.poll_transmit() {
                c.handle_input(now, &b);
            }
            if asked {
                break;
            }
        }
        s.reject(why);
        while let Some(b) = s.poll_transmit() {
            c.handle_input(now, &b);
        }
        let mut ev = Vec::new();
        while let Some(e) = c.poll_event() {
            ev.push(e);
        }
        let Some(ClientEvent::Error(e)) = ev.last() else { panic!("{ev:?}") };
        let step = if mode == ClientMode::Play { "play" } else { "publish" };
        assert_eq!(
            e,
            &ClientError::Rejected { step: step.into(), kind, code: code.into(), description: why.into() },
            "{ev:?}"
        );
        assert!(e.to_string().contains(why), "{e}");
        assert!(c.is_ended());
    }
}

/// A canned server: reads what the client sends, answers with hand-built messages.
struct Canned {
    w: ChunkWriter,
    r: ChunkReader,
    inbound: BytesMut,
}

impl Canned {
    fn new() -> Self {
        Canned { w: ChunkWriter::new(), r: ChunkReader::new(), inbound: BytesMut::new() }
    }

    /// S0+S1+S2 (plain) for the client's C0+C1.
    fn handshake(c: &mut RtmpClientSession, now: Instant) -> Canned {
        let c0c1 = c.poll_transmit().unwrap();
        assert_eq!(c0c1.len(), 1 + PACKET_SIZE);
        let s = handshake::server_response(&c0c1, 0, &mut Filler::new(5)).unwrap();
        c.handle_input(now, &s);
        let mut me = Canned::new();
        let out = c.poll_transmit().unwrap();
        me.inbound.extend_from_slice(&out[PACKET_SIZE..]);
        me
    }

    /// Commands the client sent (name, transaction, stream id), applying its Set Chunk Size.
    fn read(&mut self, c: &mut RtmpClientSession) -> Vec<rtmp::Message> {
        while let Some(b) = c.poll_transmit() {
            self.inbound.extend_from_slice(&b);
        }
        let mut out = Vec::new();
        while let Some(m) = self.r.read(&mut self.inbound).unwrap() {
            if m.type_id == msg::SET_CHUNK_SIZE {
                self.r.set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap())).unwrap();
            }
            out.push(m);
        }
        out
    }

    fn command(&self, stream_id: u32, name: &str, tid: f64, args: &[Amf0Value]) -> BytesMut {
        let mut out = BytesMut::new();
        msg::write_command(&self.w, &mut out, stream_id, name, tid, args);
        out
    }
}

fn names(msgs: &[rtmp::Message]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.type_id == msg::COMMAND_AMF0)
        .map(|m| Amf0Reader::new(&m.payload).read_all().unwrap()[0].as_str().unwrap().to_string())
        .collect()
}

fn events(c: &mut RtmpClientSession) -> Vec<ClientEvent> {
    let mut v = Vec::new();
    while let Some(e) = c.poll_event() {
        v.push(e);
    }
    v
}

#[test]
fn canned_connect_sequence_and_refused_connect() {
    let now = Instant::now();
    let mut cfg = config(ClientMode::Publish, "rtmp://h/app/key");
    cfg.fourcc_list = vec!["hvc1".into(), "Opus".into()];
    let mut c = RtmpClientSession::new(cfg, now);
    let mut srv = Canned::handshake(&mut c, now);
    let m = srv.read(&mut c);
    // Set Chunk Size 4096 first, then connect with FMLE's flashVer and the tcUrl.
    assert_eq!(m[0].type_id, msg::SET_CHUNK_SIZE);
    assert_eq!(&m[0].payload[..], &4096u32.to_be_bytes());
    assert_eq!(names(&m), vec!["connect"]);
    let v = Amf0Reader::new(&m[1].payload).read_all().unwrap();
    assert_eq!(v[2].get("app").and_then(Amf0Value::as_str), Some("app"));
    assert_eq!(v[2].get("tcUrl").and_then(Amf0Value::as_str), Some("rtmp://h:1935/app"));
    assert_eq!(v[2].get("flashVer").and_then(Amf0Value::as_str), Some("FMLE/3.0 (compatible; FMSc/1.0)"));
    assert_eq!(
        v[2].get("fourCcList"),
        Some(&Amf0Value::StrictArray(vec![Amf0Value::string("hvc1"), Amf0Value::string("Opus")]))
    );

    // _error for connect (MediaMTX-style authentication failure).
    let info = msg::status("error", "NetConnection.Connect.Rejected", "authentication failed");
    c.handle_input(now, &srv.command(0, "_error", 1.0, &[Amf0Value::Null, info]));
    let ev = events(&mut c);
    assert_eq!(
        ev,
        vec![ClientEvent::Error(ClientError::Rejected {
            step: "connect".into(),
            kind: RejectKind::Auth,
            code: "NetConnection.Connect.Rejected".into(),
            description: "authentication failed".into()
        })]
    );
    assert_eq!(
        ev[0].clone(),
        ClientEvent::Error(ClientError::Rejected {
            step: "connect".into(),
            kind: RejectKind::Auth,
            code: "NetConnection.Connect.Rejected".into(),
            description: "authentication failed".into()
        })
    );
    let ClientEvent::Error(e) = &ev[0] else { unreachable!() };
    assert_eq!(
        e.to_string(),
        "RTMP connect refused by the server: NetConnection.Connect.Rejected (authentication failed)"
    );
}

#[test]
fn canned_publish_with_control_messages() {
    let now = Instant::now();
    let mut c = RtmpClientSession::new(config(ClientMode::Publish, "rtmp://h/app/key"), now);
    let mut srv = Canned::handshake(&mut c, now);
    srv.read(&mut c);
    // Window 100, peer bandwidth, chunk size 50 from the server, then the connect _result.
    let mut input = BytesMut::new();
    msg::write_control_u32(&srv.w, &mut input, msg::WINDOW_ACK_SIZE, 100);
    msg::write_peer_bandwidth(&srv.w, &mut input, 100, 2);
    msg::write_control_u32(&srv.w, &mut input, msg::SET_CHUNK_SIZE, 50);
    srv.w.set_chunk_size(50);
    let ok = msg::status("status", "NetConnection.Connect.Success", "ok");
    input.extend_from_slice(&srv.command(0, "_result", 1.0, &[Amf0Value::Null, ok]));
    c.handle_input(now, &input);
    assert_eq!(events(&mut c), vec![ClientEvent::Connected { server: None }]);
    let m = srv.read(&mut c);
    // Our window answers the peer bandwidth; the acknowledgement of > 100 bytes; then the publish prelude.
    assert!(m.iter().any(|m| m.type_id == msg::WINDOW_ACK_SIZE));
    assert!(m.iter().any(|m| m.type_id == msg::ACKNOWLEDGEMENT), "{m:?}");
    assert_eq!(names(&m), vec!["releaseStream", "FCPublish", "createStream"]);

    // _error for releaseStream is harmless; createStream gives stream 7; a ping is answered.
    let mut input = srv.command(0, "_error", 2.0, &[Amf0Value::Null, Amf0Value::Null]);
    input.extend_from_slice(&srv.command(0, "_result", 4.0, &[Amf0Value::Null, Amf0Value::Number(7.0)]));
    msg::write_user_control(&srv.w, &mut input, msg::PING_REQUEST, 1234);
    c.handle_input(now, &input);
    assert!(events(&mut c).is_empty());
    let m = srv.read(&mut c);
    let pong = m.iter().find(|m| m.type_id == msg::USER_CONTROL).expect("ping response");
    assert_eq!(&pong.payload[..], &[0, 7, 0, 0, 0x04, 0xD2]);
    let publish = m.iter().find(|m| m.type_id == msg::COMMAND_AMF0).unwrap();
    assert_eq!(publish.stream_id, 7);
    let v = Amf0Reader::new(&publish.payload).read_all().unwrap();
    assert_eq!((v[0].as_str(), v[3].as_str(), v[4].as_str()), (Some("publish"), Some("key"), Some("live")));

    // Publish.Start on stream 7 (in an AMF3 command message, as some servers send).
    let info = msg::status("status", "NetStream.Publish.Start", "go");
    let mut body = BytesMut::new();
    body.put_u8(0);
    for v in [Amf0Value::string("onStatus"), Amf0Value::Number(0.0), Amf0Value::Null, info] {
        v.encode(&mut body);
    }
    let mut input = BytesMut::new();
    srv.w.write(&mut input, 5, 0, msg::COMMAND_AMF3, 7, &body);
    c.handle_input(now, &input);
    assert_eq!(events(&mut c), vec![ClientEvent::Publishing]);
    assert_eq!(c.poll_timeout(), None, "a publisher may hear nothing for long");
    c.send_media(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0]).unwrap();
    let m = srv.read(&mut c);
    let video = m.iter().find(|m| m.type_id == msg::VIDEO).expect("video");
    assert_eq!((video.stream_id, &video.payload[..]), (7, &[0x17, 0, 0, 0, 0][..]));

    // A full output queue refuses.
    let big = vec![0u8; 1 << 20];
    let mut refused = false;
    for _ in 0..20 {
        if c.send_media(MediaKind::Video, 0, &big) == Err(SendError::Full) {
            refused = true;
            break;
        }
    }
    assert!(refused && c.pending_output() < 10 << 20);
}

#[test]
fn canned_play_aggregate_and_end() {
    let now = Instant::now();
    let mut c = RtmpClientSession::new(config(ClientMode::Play, "rtmp://h/app/key"), now);
    let mut srv = Canned::handshake(&mut c, now);
    srv.read(&mut c);
    let ok = msg::status("status", "NetConnection.Connect.Success", "ok");
    c.handle_input(now, &srv.command(0, "_result", 1.0, &[Amf0Value::Null, ok]));
    c.handle_input(now, &srv.command(0, "_result", 4.0, &[Amf0Value::Null, Amf0Value::Number(1.0)]));
    let m = srv.read(&mut c);
    assert_eq!(names(&m), vec!["createStream", "play"]);
    // Set Buffer Length for stream 1.
    assert!(m.iter().any(|m| m.type_id == msg::USER_CONTROL && m.payload[..2] == [0, 3]));
    let start = msg::status("status", "NetStream.Play.Start", "go");
    c.handle_input(now, &srv.command(1, "onStatus", 0.0, &[Amf0Value::Null, start]));
    assert_eq!(events(&mut c), vec![ClientEvent::Connected { server: None }, ClientEvent::Playing]);

    // An aggregate of a video and an audio tag.
    let mut agg = BytesMut::new();
    for (t, ts, body) in [(9u8, 1000u32, &b"abc"[..]), (8, 1020, &b"d"[..])] {
        agg.put_u8(t);
        agg.put_uint(body.len() as u64, 3);
        agg.put_uint(u64::from(ts & 0xFF_FFFF), 3);
        agg.put_u8((ts >> 24) as u8);
        agg.put_uint(0, 3);
        agg.put_slice(body);
        agg.put_u32(11 + body.len() as u32);
    }
    let mut input = BytesMut::new();
    srv.w.write(&mut input, 6, 500, msg::AGGREGATE, 1, &agg);
    // Media on another stream is not ours.
    srv.w.write(&mut input, 6, 500, msg::VIDEO, 2, b"zz");
    c.handle_input(now, &input);
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::Media { kind: MediaKind::Video, timestamp: 500, payload: b"abc"[..].into() },
            ClientEvent::Media { kind: MediaKind::Audio, timestamp: 520, payload: b"d"[..].into() },
        ]
    );
    // The publisher left.
    let stop = msg::status("status", "NetStream.Play.UnpublishNotify", "gone");
    c.handle_input(now, &srv.command(1, "onStatus", 0.0, &[Amf0Value::Null, stop]));
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::Closed { reason: "the server ended the stream (NetStream.Play.UnpublishNotify)".into() }]
    );
}

#[test]
fn timeouts_eof_and_garbage() {
    let now = Instant::now();
    // No answer to the handshake.
    let mut c = RtmpClientSession::new(config(ClientMode::Play, "rtmp://h/app/key"), now);
    let t = c.poll_timeout().unwrap();
    assert_eq!(t, now + Duration::from_secs(10));
    c.handle_timeout(t - Duration::from_millis(1));
    assert!(events(&mut c).is_empty());
    c.handle_timeout(t);
    assert_eq!(
        events(&mut c),
        vec![ClientEvent::Error(ClientError::Timeout("no handshake answer within 10 s".into()))]
    );

    // An HTTP server on the port.
    let mut c = RtmpClientSession::new(config(ClientMode::Play, "rtmp://h/app/key"), now);
    c.handle_input(now, b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [ClientEvent::Error(e)] if e.to_string().contains("unsupported version 72")), "{ev:?}");

    // The server hangs up after connect (nginx-rtmp and MediaMTX do on bad credentials).
    let mut c = RtmpClientSession::new(config(ClientMode::Play, "rtmp://h/app/key"), now);
    let _srv = Canned::handshake(&mut c, now);
    c.handle_eof();
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [ClientEvent::Error(ClientError::Closed(s))] if s.contains("after connect")), "{ev:?}");

    // Playing, then silence: the idle timeout.
    let mut c = RtmpClientSession::new(config(ClientMode::Play, "rtmp://h/app/key"), now);
    let srv = Canned::handshake(&mut c, now);
    let ok = msg::status("status", "NetConnection.Connect.Success", "ok");
    c.handle_input(now, &srv.command(0, "_result", 1.0, &[Amf0Value::Null, ok]));
    c.handle_input(now, &srv.command(0, "_result", 4.0, &[Amf0Value::Null, Amf0Value::Number(1.0)]));
    let later = now + Duration::from_secs(3);
    let start = msg::status("status", "NetStream.Play.Start", "go");
    c.handle_input(later, &srv.command(1, "onStatus", 0.0, &[Amf0Value::Null, start]));
    assert_eq!(c.poll_timeout(), Some(later + Duration::from_secs(10)));
    c.handle_timeout(later + Duration::from_secs(10));
    assert!(matches!(events(&mut c).last(), Some(ClientEvent::Error(ClientError::Timeout(_)))));

    // createStream without a stream id; an absurd message length.
    let mut c = RtmpClientSession::new(config(ClientMode::Play, "rtmp://h/app/key"), now);
    let srv = Canned::handshake(&mut c, now);
    let ok = msg::status("status", "NetConnection.Connect.Success", "ok");
    c.handle_input(now, &srv.command(0, "_result", 1.0, &[Amf0Value::Null, ok]));
    c.handle_input(now, &srv.command(0, "_result", 4.0, &[Amf0Value::Null, Amf0Value::string("x")]));
    assert!(
        matches!(events(&mut c).last(), Some(ClientEvent::Error(ClientError::Protocol(s))) if s.contains("stream id"))
    );
    let mut c = RtmpClientSession::new(config(ClientMode::Play, "rtmp://h/app/key"), now);
    let _srv = Canned::handshake(&mut c, now);
    c.handle_input(now, &[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
    assert!(matches!(events(&mut c).last(), Some(ClientEvent::Error(e)) if e.to_string().contains("larger than")));
}
