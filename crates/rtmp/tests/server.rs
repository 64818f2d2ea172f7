//! The server session driven by a small client built from the crate's own encoders (handshake, chunk
//! writer/reader, AMF0), byte by byte and in bulk.

use bytes::{BufMut, BytesMut};
use rtmp::handshake::{self, Filler};
use rtmp::message::{self as msg};
use rtmp::server::SendError;
use rtmp::{Amf0Reader, Amf0Value, ChunkReader, ChunkWriter, MediaKind, RtmpServerSession, ServerConfig, ServerEvent};
use std::time::{Duration, Instant};

struct Client {
    w: ChunkWriter,
    r: ChunkReader,
    inbound: BytesMut,
}

impl Client {
    fn new() -> Self {
        Client { w: ChunkWriter::new(), r: ChunkReader::new(), inbound: BytesMut::new() }
    }

    fn command(&self, stream_id: u32, name: &str, tid: f64, args: &[Amf0Value]) -> BytesMut {
        let mut out = BytesMut::new();
        msg::write_command(&self.w, &mut out, stream_id, name, tid, args);
        out
    }

    /// Messages the server sent, with server-side Set Chunk Size applied.
    fn receive(&mut self, bytes: &[u8]) -> Vec<rtmp::Message> {
        self.inbound.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(m) = self.r.read(&mut self.inbound).unwrap() {
            if m.type_id == msg::SET_CHUNK_SIZE {
                self.r.set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap())).unwrap();
            }
            out.push(m);
        }
        out
    }
}

fn drain(s: &mut RtmpServerSession) -> (Vec<u8>, Vec<ServerEvent>) {
    let mut bytes = Vec::new();
    while let Some(b) = s.poll_transmit() {
        bytes.extend_from_slice(&b);
    }
    let mut ev = Vec::new();
    while let Some(e) = s.poll_event() {
        ev.push(e);
    }
    (bytes, ev)
}

fn commands(msgs: &[rtmp::Message]) -> Vec<(String, Vec<Amf0Value>)> {
    msgs.iter()
        .filter(|m| m.type_id == msg::COMMAND_AMF0)
        .map(|m| {
            let v = Amf0Reader::new(&m.payload).read_all().unwrap();
            (v[0].as_str().unwrap().to_owned(), v[1..].to_vec())
        })
        .collect()
}

fn code(args: &[Amf0Value]) -> &str {
    args[2].get("code").and_then(Amf0Value::as_str).unwrap()
}

/// Handshake (digest or plain) and connect; returns the session, the client and the server's messages.
fn connected(digest: bool, bytewise: bool) -> (RtmpServerSession, Client, Instant) {
    let now = Instant::now();
    let mut s = RtmpServerSession::new(ServerConfig::default(), now);
    let (c0c1, d) = handshake::client_hello(0, digest, &mut Filler::new(9));
    feed(&mut s, now, &c0c1, bytewise);
    let (s0s1s2, ev) = drain(&mut s);
    assert!(ev.is_empty());
    let c2 = handshake::client_verify(&s0s1s2, d.as_ref()).unwrap();
    let mut c = Client::new();
    // The client raises its chunk size and sends its window first, as ffmpeg does.
    let mut input = c2;
    let mut more = BytesMut::new();
    msg::write_control_u32(&c.w, &mut more, msg::SET_CHUNK_SIZE, 60);
    c.w.set_chunk_size(60);
    msg::write_control_u32(&c.w, &mut more, msg::WINDOW_ACK_SIZE, 100);
    input.extend_from_slice(&more);
    let connect = c.command(
        0,
        "connect",
        1.0,
        &[Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("tcUrl", Amf0Value::string("rtmp://127.0.0.1:1935/live")),
            ("flashVer", Amf0Value::string("FMLE/3.0 (compatible; FMSc/1.0)")),
        ])],
    );
    input.extend_from_slice(&connect);
    feed(&mut s, now, &input, bytewise);
    let (bytes, ev) = drain(&mut s);
    assert_eq!(
        ev,
        vec![ServerEvent::Connect { app: "live".into(), tc_url: Some("rtmp://127.0.0.1:1935/live".into()) }]
    );
    let m = c.receive(&bytes);
    // Our window, bandwidth, chunk size and _result, and (when fed byte by byte, earlier) the acknowledgement
    // of the client's 100-byte window.
    let types: Vec<u8> = m.iter().map(|m| m.type_id).filter(|&t| t != msg::ACKNOWLEDGEMENT).collect();
    assert_eq!(types, vec![msg::WINDOW_ACK_SIZE, msg::SET_PEER_BANDWIDTH, msg::SET_CHUNK_SIZE, msg::COMMAND_AMF0]);
    assert!(m.iter().any(|m| m.type_id == msg::ACKNOWLEDGEMENT));
    let cmds = commands(&m);
    assert_eq!(cmds[0].0, "_result");
    assert_eq!(cmds[0].1[0], Amf0Value::Number(1.0));
    assert_eq!(cmds[0].1[2].get("code").and_then(Amf0Value::as_str), Some("NetConnection.Connect.Success"));
    (s, c, now)
}

fn feed(s: &mut RtmpServerSession, now: Instant, bytes: &[u8], bytewise: bool) {
    if bytewise {
        for b in bytes {
            s.handle_input(now, std::slice::from_ref(b));
        }
    } else {
        s.handle_input(now, bytes);
    }
}

fn create_stream(s: &mut RtmpServerSession, c: &mut Client, now: Instant) -> u32 {
    let mut input = c.command(0, "releaseStream", 2.0, &[Amf0Value::Null, Amf0Value::string("cam")]);
    input.extend_from_slice(&c.command(0, "FCPublish", 3.0, &[Amf0Value::Null, Amf0Value::string("cam")]));
    input.extend_from_slice(&c.command(0, "createStream", 4.0, &[Amf0Value::Null]));
    s.handle_input(now, &input);
    let (bytes, ev) = drain(s);
    assert!(ev.is_empty());
    let cmds = commands(&c.receive(&bytes));
    let created = cmds.iter().find(|(_, a)| a[0] == Amf0Value::Number(4.0)).unwrap();
    created.1[2].as_number().unwrap() as u32
}

#[test]
fn publish_flow_plain_and_digest_bytewise_and_bulk() {
    for (digest, bytewise) in [(false, false), (true, false), (false, true), (true, true)] {
        let (mut s, mut c, now) = connected(digest, bytewise);
        let id = create_stream(&mut s, &mut c, now);
        assert_eq!(id, 1);
        let publish = c.command(
            id,
            "publish",
            5.0,
            &[Amf0Value::Null, Amf0Value::string("cam?user=a&pass=b"), Amf0Value::string("live")],
        );
        feed(&mut s, now, &publish, bytewise);
        let (bytes, ev) = drain(&mut s);
        assert!(bytes.is_empty());
        assert_eq!(ev, vec![ServerEvent::Publish { stream_key: "cam?user=a&pass=b".into() }]);
        s.accept_publish();
        let (bytes, _) = drain(&mut s);
        let cmds = commands(&c.receive(&bytes));
        assert_eq!(cmds[0].0, "onStatus");
        assert_eq!(code(&cmds[0].1), "NetStream.Publish.Start");

        // Metadata, a video message longer than the chunk size, audio with an extended timestamp.
        let mut input = BytesMut::new();
        let meta = rtmp::amf0::encode_all(&[
            Amf0Value::string("@setDataFrame"),
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
        ]);
        c.w.write(&mut input, 4, 0, msg::DATA_AMF0, id, &meta);
        let video: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        c.w.write(&mut input, 6, 40, msg::VIDEO, id, &video);
        c.w.write(&mut input, 5, 0x0100_0000, msg::AUDIO, id, &[0xAF, 1, 2, 3]);
        feed(&mut s, now, &input, bytewise);
        let (bytes, ev) = drain(&mut s);
        assert_eq!(ev.len(), 3, "{ev:?}");
        match &ev[0] {
            ServerEvent::Media { kind: MediaKind::Data, timestamp: 0, payload } => {
                let v = Amf0Reader::new(payload).read_all().unwrap();
                assert_eq!(v[0].as_str(), Some("onMetaData"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ev[1], ServerEvent::Media { kind: MediaKind::Video, timestamp: 40, payload: video.into() });
        assert_eq!(
            ev[2],
            ServerEvent::Media { kind: MediaKind::Audio, timestamp: 0x0100_0000, payload: vec![0xAF, 1, 2, 3].into() }
        );
        // The client's window of 100 bytes was passed: acknowledgements went out.
        let m = c.receive(&bytes);
        assert!(m.iter().any(|m| m.type_id == msg::ACKNOWLEDGEMENT), "{m:?}");

        // deleteStream ends it.
        let del = c.command(0, "deleteStream", 6.0, &[Amf0Value::Null, Amf0Value::Number(f64::from(id))]);
        feed(&mut s, now, &del, bytewise);
        assert_eq!(drain(&mut s).1, vec![ServerEvent::Closed]);
        assert!(s.is_ended());
    }
}

#[test]
fn play_flow_sends_status_and_media() {
    let (mut s, mut c, now) = connected(false, false);
    let id = create_stream(&mut s, &mut c, now);
    assert_eq!(s.send_media(MediaKind::Video, 0, &[1]), Err(SendError::NotPlaying));
    let play = c.command(id, "play", 5.0, &[Amf0Value::Null, Amf0Value::string("cam"), Amf0Value::Number(-2.0)]);
    s.handle_input(now, &play);
    assert_eq!(drain(&mut s).1, vec![ServerEvent::Play { stream_key: "cam".into() }]);
    s.accept_play();
    let big = vec![7u8; 10_000];
    s.send_media(MediaKind::Video, 0, &big).unwrap();
    s.send_media(MediaKind::Audio, 21, &[0xAF, 1]).unwrap();
    let (bytes, _) = drain(&mut s);
    let m = c.receive(&bytes);
    assert_eq!(m[0].type_id, msg::USER_CONTROL);
    assert_eq!(&m[0].payload[..], &[0, 0, 0, 0, 0, 1]);
    let cmds = commands(&m);
    assert_eq!(code(&cmds[0].1), "NetStream.Play.Reset");
    assert_eq!(code(&cmds[1].1), "NetStream.Play.Start");
    let media: Vec<_> = m.iter().filter(|m| m.type_id == msg::VIDEO || m.type_id == msg::AUDIO).collect();
    assert_eq!(media.len(), 2);
    assert_eq!((media[0].stream_id, media[0].payload.len()), (id, 10_000));
    assert_eq!((media[1].timestamp, &media[1].payload[..]), (21, &[0xAF, 1][..]));
    // Ping is answered while playing.
    let mut ping = BytesMut::new();
    msg::write_user_control(&c.w, &mut ping, msg::PING_REQUEST, 1234);
    s.handle_input(now, &ping);
    let m = c.receive(&drain(&mut s).0);
    assert_eq!(&m[0].payload[..], &[0, 7, 0, 0, 0x04, 0xD2]);
    // A player that reads nothing: the output queue is bounded.
    let mut refused = false;
    for _ in 0..2000 {
        if s.send_media(MediaKind::Video, 0, &big) == Err(SendError::Full) {
            refused = true;
            break;
        }
    }
    assert!(refused && s.pending_output() < 9 * 1024 * 1024);
}

#[test]
fn reject_sends_error_status_and_ends() {
    let (mut s, mut c, now) = connected(false, false);
    let id = create_stream(&mut s, &mut c, now);
    let publish =
        c.command(id, "publish", 5.0, &[Amf0Value::Null, Amf0Value::string("cam"), Amf0Value::string("live")]);
    s.handle_input(now, &publish);
    drain(&mut s);
    s.reject("not allowed");
    let cmds = commands(&c.receive(&drain(&mut s).0));
    assert_eq!(code(&cmds[0].1), "NetStream.Publish.BadName");
    assert!(s.is_ended());
    // Input after the end is ignored.
    s.handle_input(now, &[1, 2, 3]);
    assert_eq!(drain(&mut s), (vec![], vec![]));
}

#[test]
fn media_before_accept_and_on_other_streams_is_dropped() {
    let (mut s, mut c, now) = connected(false, false);
    let id = create_stream(&mut s, &mut c, now);
    let mut input = c.command(id, "publish", 5.0, &[Amf0Value::Null, Amf0Value::string("cam")]);
    c.w.write(&mut input, 6, 0, msg::VIDEO, id, &[0x17, 0]);
    s.handle_input(now, &input);
    assert_eq!(drain(&mut s).1, vec![ServerEvent::Publish { stream_key: "cam".into() }]);
    // Read after the accept (buffered, not lost).
    s.accept_publish();
    assert_eq!(
        drain(&mut s).1,
        vec![ServerEvent::Media { kind: MediaKind::Video, timestamp: 0, payload: vec![0x17, 0].into() }]
    );
    let mut other = BytesMut::new();
    c.w.write(&mut other, 6, 0, msg::VIDEO, id + 5, &[0x17, 0]);
    s.handle_input(now, &other);
    assert!(drain(&mut s).1.is_empty());
}

#[test]
fn aggregate_messages_are_split() {
    let (mut s, mut c, now) = connected(false, false);
    let id = create_stream(&mut s, &mut c, now);
    s.handle_input(now, &c.command(id, "publish", 5.0, &[Amf0Value::Null, Amf0Value::string("cam")]));
    drain(&mut s);
    s.accept_publish();
    drain(&mut s);
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
    c.w.write(&mut input, 6, 500, msg::AGGREGATE, id, &agg);
    s.handle_input(now, &input);
    assert_eq!(
        drain(&mut s).1,
        vec![
            ServerEvent::Media { kind: MediaKind::Video, timestamp: 500, payload: b"abc"[..].into() },
            ServerEvent::Media { kind: MediaKind::Audio, timestamp: 520, payload: b"d"[..].into() },
        ]
    );
    // A truncated aggregate is an error.
    let mut input = BytesMut::new();
    c.w.write(&mut input, 6, 500, msg::AGGREGATE, id, &agg[..agg.len() - 2]);
    s.handle_input(now, &input);
    assert!(matches!(drain(&mut s).1.last(), Some(ServerEvent::Error(_))));
}

#[test]
fn bad_input_is_a_clear_error() {
    let now = Instant::now();
    // HTTP on the RTMP port.
    let mut s = RtmpServerSession::new(ServerConfig::default(), now);
    s.handle_input(now, b"GET / HTTP/1.1\r\n");
    let ev = drain(&mut s).1;
    assert_eq!(ev.len(), 1);
    assert!(matches!(&ev[0], ServerEvent::Error(e) if e.to_string().contains("unsupported version 71")));
    // A command before connect.
    let (c0c1, _) = handshake::client_hello(0, false, &mut Filler::new(1));
    let mut s = RtmpServerSession::new(ServerConfig::default(), now);
    s.handle_input(now, &c0c1);
    s.handle_input(now, &[0u8; 1536]);
    let c = Client::new();
    s.handle_input(now, &c.command(0, "play", 1.0, &[Amf0Value::Null, Amf0Value::string("x")]));
    assert!(matches!(&drain(&mut s).1[..], [ServerEvent::Error(e)] if e.to_string().contains("play before connect")));
    // Absurd message length and chunk size.
    let (mut s, _c, now) = connected(false, false);
    s.handle_input(now, &[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
    assert!(matches!(&drain(&mut s).1[..], [ServerEvent::Error(e)] if e.to_string().contains("larger than")));
    let (mut s, c, now) = connected(false, false);
    let mut b = BytesMut::new();
    msg::write_control_u32(&c.w, &mut b, msg::SET_CHUNK_SIZE, 0);
    s.handle_input(now, &b);
    assert!(matches!(&drain(&mut s).1[..], [ServerEvent::Error(e)] if e.to_string().contains("chunk size 0")));
}

#[test]
fn idle_handshake_times_out_and_eof_closes() {
    let now = Instant::now();
    let mut s = RtmpServerSession::new(ServerConfig::default(), now);
    s.handle_input(now, &[3, 0, 0]);
    let t = s.poll_timeout().unwrap();
    assert_eq!(t, now + Duration::from_secs(10));
    s.handle_timeout(t - Duration::from_millis(1));
    assert!(drain(&mut s).1.is_empty());
    s.handle_timeout(t);
    assert!(matches!(&drain(&mut s).1[..], [ServerEvent::Error(rtmp::ServerError::HandshakeTimeout(_))]));
    assert_eq!(s.poll_timeout(), None);

    let (mut s, _c, _) = connected(true, false);
    s.handle_eof();
    assert_eq!(drain(&mut s).1, vec![ServerEvent::Closed]);
}

#[test]
fn a_thousand_idle_handshakes_all_time_out() {
    let now = Instant::now();
    let mut sessions: Vec<_> = (0..1000).map(|_| RtmpServerSession::new(ServerConfig::default(), now)).collect();
    for s in &mut sessions {
        // C0 and part of C1, then nothing.
        s.handle_input(now, &[3; 1000]);
        assert!(drain(s).0.is_empty());
    }
    let later = now + Duration::from_secs(10);
    for s in &mut sessions {
        assert_eq!(s.poll_timeout(), Some(later));
        s.handle_timeout(later);
        assert!(matches!(&drain(s).1[..], [ServerEvent::Error(rtmp::ServerError::HandshakeTimeout(_))]));
        assert!(s.is_ended());
    }
}

/// Enhanced RTMP: a client whose `connect` names `fourCcList` (ffmpeg `-rtmp_enhanced_codecs`, OBS 30)
/// learns ours in `_result` (list, info maps, capsEx); a legacy client's `_result` has none of them.
#[test]
fn enhanced_connect_advertises_fourccs() {
    let (s, _, _) = connected(false, false);
    assert_eq!(s.client_fourccs(), None);
    assert!(s.client_accepts("hvc1"), "a client that names nothing is sent enhanced tags");

    let now = Instant::now();
    let mut s = RtmpServerSession::new(ServerConfig::default(), now);
    let (c0c1, _) = handshake::client_hello(0, false, &mut Filler::new(3));
    s.handle_input(now, &c0c1);
    let (s0s1s2, _) = drain(&mut s);
    let mut input = handshake::client_verify(&s0s1s2, None).unwrap();
    let mut c = Client::new();
    let list = Amf0Value::StrictArray(vec![Amf0Value::string("hvc1"), Amf0Value::string("av01")]);
    let vmap = Amf0Value::object([("vp09", Amf0Value::Number(1.0))]);
    let obj =
        Amf0Value::object([("app", Amf0Value::string("live")), ("fourCcList", list), ("videoFourCcInfoMap", vmap)]);
    input.extend_from_slice(&c.command(0, "connect", 1.0, &[obj]));
    s.handle_input(now, &input);
    let (bytes, _) = drain(&mut s);
    assert_eq!(s.client_fourccs(), Some(&["hvc1".to_string(), "av01".into(), "vp09".into()][..]));
    assert!(s.client_accepts("av01") && !s.client_accepts("Opus"));
    let cmds = commands(&c.receive(&bytes));
    let props = &cmds[0].1[1];
    let ours: Vec<&str> = match props.get("fourCcList") {
        Some(Amf0Value::StrictArray(v)) => v.iter().filter_map(Amf0Value::as_str).collect(),
        other => panic!("no fourCcList in _result: {other:?}"),
    };
    assert_eq!(ours, ["avc1", "hvc1", "av01", "vp09", "Opus", "mp4a"]);
    assert_eq!(props.get("videoFourCcInfoMap").and_then(|m| m.get("av01")), Some(&Amf0Value::Number(5.0)));
    assert_eq!(props.get("audioFourCcInfoMap").and_then(|m| m.get("Opus")), Some(&Amf0Value::Number(5.0)));
    assert_eq!(props.get("capsEx"), Some(&Amf0Value::Number(6.0)));
}

/// An AMF3 string (inline; our test strings are short).
fn amf3_str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 64);
    out.push(((s.len() as u8) << 1) | 1);
    out.extend_from_slice(s.as_bytes());
}

/// A client with `objectEncoding: 3` (Flash's NetConnection default): its `connect` is a type-17 command
/// whose command object is AMF3 behind the `avmplus-object` marker; `_result` repeats the encoding; data
/// of type 15 with an AMF3 object reaches the driver as AMF0 (an FLV script tag body).
#[test]
fn amf3_connect_and_data() {
    let now = Instant::now();
    let mut s = RtmpServerSession::new(ServerConfig::default(), now);
    let (c0c1, _) = handshake::client_hello(0, false, &mut Filler::new(5));
    s.handle_input(now, &c0c1);
    let (s0s1s2, _) = drain(&mut s);
    let mut input = handshake::client_verify(&s0s1s2, None).unwrap();
    let mut c = Client::new();
    let mut body = vec![0x00];
    body.extend_from_slice(&rtmp::amf0::encode_all(&[Amf0Value::string("connect"), Amf0Value::Number(1.0)]));
    // 0x11, then an anonymous dynamic AMF3 object {app: "live", tcUrl: ..., objectEncoding: 3}.
    body.extend_from_slice(&[0x11, 0x0A, 0x0B, 0x01]);
    for (k, v) in [("app", "live"), ("tcUrl", "rtmp://127.0.0.1/live")] {
        amf3_str(&mut body, k);
        body.push(0x06);
        amf3_str(&mut body, v);
    }
    amf3_str(&mut body, "objectEncoding");
    body.extend_from_slice(&[0x04, 0x03, 0x01]);
    let mut cmd = BytesMut::new();
    c.w.write(&mut cmd, 3, 0, msg::COMMAND_AMF3, 0, &body);
    input.extend_from_slice(&cmd);
    s.handle_input(now, &input);
    let (bytes, ev) = drain(&mut s);
    assert_eq!(ev, vec![ServerEvent::Connect { app: "live".into(), tc_url: Some("rtmp://127.0.0.1/live".into()) }]);
    let cmds = commands(&c.receive(&bytes));
    assert_eq!(cmds[0].0, "_result");
    assert_eq!(code(&cmds[0].1), "NetConnection.Connect.Success");
    assert_eq!(cmds[0].1[2].get("objectEncoding"), Some(&Amf0Value::Number(3.0)));

    // createStream and publish as type-17 commands with AMF0 values (no switch).
    let amf3_command = |c: &Client, stream: u32, values: &[Amf0Value]| {
        let mut body = vec![0x00];
        body.extend_from_slice(&rtmp::amf0::encode_all(values));
        let mut out = BytesMut::new();
        c.w.write(&mut out, 3, 0, msg::COMMAND_AMF3, stream, &body);
        out
    };
    s.handle_input(
        now,
        &amf3_command(&c, 0, &[Amf0Value::string("createStream"), Amf0Value::Number(2.0), Amf0Value::Null]),
    );
    let cmds = commands(&c.receive(&drain(&mut s).0));
    let id = cmds[0].1[2].as_number().unwrap() as u32;
    s.handle_input(
        now,
        &amf3_command(
            &c,
            id,
            &[Amf0Value::string("publish"), Amf0Value::Number(0.0), Amf0Value::Null, Amf0Value::string("cam")],
        ),
    );
    assert_eq!(drain(&mut s).1, vec![ServerEvent::Publish { stream_key: "cam".into() }]);
    s.accept_publish();
    drain(&mut s);
    // Type-15 data: format byte, "onMetaData", then AMF3 {width: 640, height: 480.5}.
    let mut data = vec![0x00];
    data.extend_from_slice(&rtmp::amf0::encode_all(&[Amf0Value::string("onMetaData")]));
    data.extend_from_slice(&[0x11, 0x0A, 0x0B, 0x01]);
    amf3_str(&mut data, "width");
    data.extend_from_slice(&[0x04, 0x85, 0x00]);
    amf3_str(&mut data, "height");
    data.push(0x05);
    data.extend_from_slice(&480.5f64.to_be_bytes());
    data.push(0x01);
    let mut input = BytesMut::new();
    c.w.write(&mut input, 5, 0, msg::DATA_AMF3, id, &data);
    s.handle_input(now, &input);
    let ev = drain(&mut s).1;
    let [ServerEvent::Media { kind: MediaKind::Data, payload, .. }] = &ev[..] else { panic!("{ev:?}") };
    let v = Amf0Reader::new(payload).read_all().unwrap();
    assert_eq!(v[0], Amf0Value::string("onMetaData"));
    assert_eq!(v[1].get("width"), Some(&Amf0Value::Number(640.0)));
    assert_eq!(v[1].get("height"), Some(&Amf0Value::Number(480.5)));
}

/// Hostile input ends the session with an error that names the problem.
#[test]
fn unknown_amf_types_and_bad_amf3_are_named() {
    for (body, want) in [
        (vec![0x02, 0, 1, b'x', 0x0E], "unknown or unsupported type marker 0x0e"),
        (vec![0x02, 0, 1, b'x', 0x11, 0x20], "AMF3: unknown type marker 0x20"),
        (vec![0x02, 0, 1, b'x', 0x11, 0x10, 0x03], "AMF3: unsupported type vector-object"),
        (vec![0x02, 0, 1, b'x', 0x11, 0x0A, 0x00], "AMF3: object reference 0"),
    ] {
        let (mut s, c, now) = connected(false, false);
        let mut input = BytesMut::new();
        c.w.write(&mut input, 3, 0, msg::COMMAND_AMF0, 0, &body);
        s.handle_input(now, &input);
        let ev = drain(&mut s).1;
        assert!(matches!(&ev[..], [ServerEvent::Error(e)] if e.to_string().contains(want)), "{want}: {ev:?}");
    }
    // Set Chunk Size above 2^31 - 1, and a truncated one.
    for (payload, want) in
        [(&[0x80, 0, 0, 0][..], "invalid chunk size 2147483648"), (&[0, 0][..], "truncated Set Chunk Size")]
    {
        let (mut s, c, now) = connected(false, false);
        let mut input = BytesMut::new();
        c.w.write(&mut input, 2, 0, msg::SET_CHUNK_SIZE, 0, payload);
        s.handle_input(now, &input);
        let ev = drain(&mut s).1;
        assert!(matches!(&ev[..], [ServerEvent::Error(e)] if e.to_string().contains(want)), "{want}: {ev:?}");
    }
}

/// A client that trickles the handshake a byte at a time (each byte well within the idle timeout) is
/// still cut off at the handshake deadline, as is one that completes the handshake but never connects.
#[test]
fn trickled_handshake_hits_the_handshake_deadline() {
    let start = Instant::now();
    let mut s = RtmpServerSession::new(ServerConfig::default(), start);
    let mut now = start;
    for i in 0..100u64 {
        now = start + Duration::from_millis(i * 200);
        s.handle_input(now, &[3]);
        s.handle_timeout(now);
        if s.is_ended() {
            break;
        }
    }
    assert_eq!(s.poll_timeout(), None, "ended");
    assert_eq!(now, start + Duration::from_secs(10));
    let ev = drain(&mut s).1;
    assert!(
        matches!(&ev[..], [ServerEvent::Error(e @ rtmp::ServerError::HandshakeTimeout(_))]
        if e.to_string() == "RTMP: handshake and connect not done within 10s"),
        "{ev:?}"
    );

    // Handshake done, then nothing but pings.
    let mut s = RtmpServerSession::new(ServerConfig::default(), start);
    let (c0c1, _) = handshake::client_hello(0, false, &mut Filler::new(1));
    s.handle_input(start, &c0c1);
    s.handle_input(start, &[0u8; 1536]);
    let c = Client::new();
    let mut ping = BytesMut::new();
    msg::write_user_control(&c.w, &mut ping, msg::PING_REQUEST, 1);
    let later = start + Duration::from_secs(9);
    s.handle_input(later, &ping);
    assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(10)));
    s.handle_timeout(start + Duration::from_secs(10));
    assert!(matches!(&drain(&mut s).1[..], [ServerEvent::Error(rtmp::ServerError::HandshakeTimeout(_))]));
    // After connect only the idle timeout applies.
    let (s, _c, now) = connected(false, false);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(10)));
}

/// A stream cut in the middle of a chunk (or of the handshake) is a named error, not a clean close.
#[test]
fn eof_inside_a_chunk_is_named() {
    let (mut s, c, now) = connected(false, false);
    let mut input = c.command(0, "createStream", 2.0, &[Amf0Value::Null]);
    input.truncate(input.len() - 3);
    s.handle_input(now, &input);
    s.handle_eof();
    let ev = drain(&mut s).1;
    assert!(
        matches!(&ev[..], [ServerEvent::Error(e)] if e.to_string().contains("closed in the middle of a chunk or message")),
        "{ev:?}"
    );
    let mut s = RtmpServerSession::new(ServerConfig::default(), now);
    s.handle_input(now, &[3; 100]);
    s.handle_eof();
    let ev = drain(&mut s).1;
    assert!(
        matches!(&ev[..], [ServerEvent::Error(e)] if e.to_string().contains("middle of the handshake (100 bytes")),
        "{ev:?}"
    );
}
