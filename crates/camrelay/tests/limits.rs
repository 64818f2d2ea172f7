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
