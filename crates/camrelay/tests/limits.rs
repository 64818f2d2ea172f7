//! Process limits the server takes care of itself. In a test binary of its own: it changes the test
//! process's open-files limit while it starts the server (which inherits it).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Started with a soft limit of 64 open files (Debian's default is 1024, a few hundred viewers more
/// than that is an ordinary evening for a popular camera), the server raises it to the hard limit and
/// serves 300 RTSP connections at once.
#[test]
fn serves_more_connections_than_the_soft_open_files_limit_it_started_with() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    assert!(limit.rlim_max >= 1024, "the hard limit ({}) leaves no room for this test", limit.rlim_max);
    let inherited = limit;
    limit.rlim_cur = 64;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let srv = Server::start("");
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &inherited) }, 0);

    assert!(srv.log().contains("open files limit raised from 64 to"), "log:\n{}", srv.log());
    let mut conns = Vec::new();
    for i in 0..300 {
        let mut c = TcpStream::connect(srv.rtsp.unwrap()).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(c, "OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", srv.rtsp_url("x")).unwrap();
        let mut reply = [0u8; 15];
        c.read_exact(&mut reply).unwrap_or_else(|e| panic!("connection {i} got no reply: {e}"));
        assert_eq!(&reply, b"RTSP/1.0 200 OK", "connection {i}");
        conns.push(c);
    }
    // All 300 are still open on the server's side: one more request on the first is answered.
    write!(conns[0], "OPTIONS {} RTSP/1.0\r\nCSeq: 2\r\n\r\n", srv.rtsp_url("x")).unwrap();
    let mut rest = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&rest).contains("CSeq: 2") {
        let n = conns[0].read(&mut buf).expect("second reply");
        assert!(n > 0, "the server closed the first connection");
        rest.extend_from_slice(&buf[..n]);
    }
}

/// A TCP connection to `to` from the local address `from` (another loopback address, so that the
/// attacker's per-IP bound does not apply to the test's honest clients on 127.0.0.1).
fn connect_from(from: &str, to: std::net::SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Whether the server has closed `c` (end of stream or reset), without waiting.
fn closed_by_server(c: &mut TcpStream) -> bool {
    c.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // a reply (none is expected): keep reading
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    c.set_nonblocking(false).unwrap();
    closed
}

/// Slowloris: 20 connections from one address that never finish a request (half send nothing, half
/// trickle a header byte by byte) take that address's whole allowance; the 21st is refused at once;
/// an ordinary ffmpeg reader (another address) plays meanwhile; and the server closes all 20 within
/// `rtsp.request_timeout`.
#[test]
fn slowloris_connections_are_bounded_per_ip_and_closed_after_the_request_timeout() {
    const N: usize = 20;
    let timeout = Duration::from_secs(6);
    let srv =
        Server::start(&format!("rtsp:\n  max_connections_per_ip: {N}\n  request_timeout: {}s\n", timeout.as_secs()));
    let rtsp = srv.rtsp.unwrap();
    let started = std::time::Instant::now();
    let mut attackers: Vec<TcpStream> = (0..N).map(|_| connect_from("127.0.0.2", rtsp)).collect();
    for (i, c) in attackers.iter_mut().enumerate() {
        if i % 2 == 1 {
            write!(c, "OPTIONS rtsp://{rtsp}/demo RTSP/1.0\r\nCSeq: 1\r\nX-Slow: ").unwrap();
        }
    }
    // The server counts a connection once it has accepted it: the 21st is closed as soon as it is.
    let mut extra = connect_from("127.0.0.2", rtsp);
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    match extra.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the connection over the per-IP bound was not closed: {other:?}"),
    }
    assert!(wait_until(Duration::from_secs(30), || srv.log().contains("rtsp.max_connections_per_ip")), "{}", srv.log());

    // An honest reader from another address plays while the attackers hold their connections.
    assert_eq!(decode_video_frames(&srv.rtsp_url("demo"), "tcp", 10).unwrap(), 10);
    if started.elapsed() < timeout {
        assert!(!attackers.iter_mut().any(closed_by_server), "an attacker was closed before the request timeout");
    }

    // All of them are closed once the request timeout has passed, trickling or not.
    let deadline = started + timeout + Duration::from_secs(15);
    let mut open: Vec<usize> = (0..N).collect();
    while !open.is_empty() && std::time::Instant::now() < deadline {
        for &i in &open {
            if i % 2 == 1 {
                let _ = attackers[i].write_all(b"x");
            }
        }
        open.retain(|&i| !closed_by_server(&mut attackers[i]));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        open.is_empty(),
        "{} of {N} slowloris connections still open {:?} after the start",
        open.len(),
        started.elapsed()
    );
    // Their places are free again.
    let mut again = connect_from("127.0.0.2", rtsp);
    again.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(again, "OPTIONS rtsp://{rtsp}/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n").unwrap();
    let mut reply = [0u8; 15];
    again.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"RTSP/1.0 200 OK");
}

/// Before it authenticates, a client may send only a small request (16 KiB of body): a large body is
/// refused from its Content-Length alone, without buffering it. Once authenticated, the usual limit
/// (1 MiB) applies.
#[test]
fn a_large_request_body_is_refused_before_authentication() {
    let srv = Server::start("rtsp:\n  username: admin\n  password: secret\n  local_auth: true\n");
    let rtsp = srv.rtsp.unwrap();
    let mut c = TcpStream::connect(rtsp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(c, "ANNOUNCE rtsp://{rtsp}/cam RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 1000000\r\n\r\nv=0\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply); // the server answers and closes
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("RTSP/1.0 413 "), "{reply}");
    assert!(reply.contains("exceeds the 16384-byte limit"), "{reply}");

    // Authenticated (Basic), the same connection may then send a larger body.
    let mut c = TcpStream::connect(rtsp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = "Authorization: Basic YWRtaW46c2VjcmV0"; // admin:secret
    write!(c, "GET_PARAMETER rtsp://{rtsp}/demo RTSP/1.0\r\nCSeq: 1\r\n{auth}\r\n\r\n").unwrap();
    let body = vec![b'a'; 100_000];
    write!(
        c,
        "SET_PARAMETER rtsp://{rtsp}/demo RTSP/1.0\r\nCSeq: 2\r\n{auth}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("CSeq: 2") {
        let n = c.read(&mut buf).expect("replies");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("RTSP/1.0 200 OK").count(), 2, "{text}");
}
