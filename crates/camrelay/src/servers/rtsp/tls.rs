//! RTSPS: the RTSP connection over TLS with the connection's own write path kept.
//!
//! The handshake is tokio-rustls's; after it the rustls session is taken out of its stream and shared
//! between the connection's two halves ([`TlsSession`]): the reading half ([`TlsReader`]) feeds it the
//! socket's bytes and reads requests and interleaved RTP out of it, and the [`super::writer::Writer`]
//! puts responses and media into it and writes the records it makes without blocking, from the
//! source's task as on plain TCP. Nothing waits for the other half longer than a buffer copy: the
//! session's lock is held only while bytes move in or out of rustls.
//!
//! What rustls holds unsent is bounded by its buffer limit (64 KiB): a write it does not take is
//! "would block" to the writer, which keeps the rest of its batch as it does when the kernel's socket
//! buffer is full.

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Ciphertext read from the socket at most per read.
const READ_CHUNK: usize = 16 * 1024;
/// Ciphertext kept unread at most.
const MAX_PENDING: usize = 256 * 1024;

/// The rustls session of one RTSPS connection, shared by its reading and writing halves.
pub(crate) struct TlsSession {
    conn: Mutex<rustls::ServerConnection>,
}

impl TlsSession {
    pub fn new(conn: rustls::ServerConnection) -> Arc<TlsSession> {
        Arc::new(TlsSession { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> MutexGuard<'_, rustls::ServerConnection> {
        // Nothing panics while holding it; a poisoned lock still guards a usable session.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encrypts as much of `slices` as rustls takes and writes what the socket takes. `WouldBlock`
    /// when records are still waiting for the socket and nothing more can be taken.
    pub fn write_vectored(&self, socket: &OwnedWriteHalf, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let len: usize = slices.iter().map(|s| s.len()).sum();
        let mut conn = self.lock();
        write_records(&mut conn, socket)?;
        if len == 0 {
            return Ok(0);
        }
        // rustls takes up to its buffer limit; while the socket takes its records, give it more.
        let mut bufs: Vec<IoSlice<'_>> = slices.to_vec();
        let mut rest = &mut bufs[..];
        let mut taken = 0;
        loop {
            let n = conn.writer().write_vectored(rest)?;
            taken += n;
            IoSlice::advance_slices(&mut rest, n);
            write_records(&mut conn, socket)?;
            if n == 0 || rest.is_empty() || conn.wants_write() {
                break;
            }
        }
        if taken == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// Writes the records rustls holds; true when none is left.
    pub fn flush_records(&self, socket: &OwnedWriteHalf) -> io::Result<bool> {
        let mut conn = self.lock();
        write_records(&mut conn, socket)?;
        Ok(!conn.wants_write())
    }

    /// Queues a `close_notify` alert (written by the next flush).
    pub fn close(&self) {
        self.lock().send_close_notify();
    }
}

/// The socket as a blocking-free `Write` for rustls: tokio's `try_write`, so that a full socket
/// makes the next `writable()` wait for the next edge.
struct SocketWriter<'a>(&'a OwnedWriteHalf);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_records(conn: &mut rustls::ServerConnection, socket: &OwnedWriteHalf) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(&mut SocketWriter(socket)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The reading half of an RTSPS connection: plaintext out of the shared session. When reading makes
/// rustls want to send (an alert, a key update's answer), `wants_write` is called so the writer's
/// task flushes it.
pub(crate) struct TlsReader {
    socket: OwnedReadHalf,
    tls: Arc<TlsSession>,
    /// Ciphertext read but not yet taken by rustls.
    pending: BytesMut,
    eof: bool,
    wants_write: Box<dyn Fn() + Send + Sync>,
}

impl TlsReader {
    pub fn new(socket: OwnedReadHalf, tls: Arc<TlsSession>, wants_write: Box<dyn Fn() + Send + Sync>) -> TlsReader {
        TlsReader { socket, tls, pending: BytesMut::new(), eof: false, wants_write }
    }
}

impl AsyncRead for TlsReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        loop {
            {
                let mut conn = me.tls.lock();
                // Plaintext first: it also drains rustls's bounded receive buffer.
                match conn.reader().read(out.initialize_unfilled()) {
                    Ok(n) => {
                        out.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                if !me.pending.is_empty() || me.eof {
                    let mut rd: &[u8] = &me.pending;
                    let taken = conn.read_tls(&mut rd)?;
                    me.pending.advance(taken);
                    let processed = conn.process_new_packets();
                    let alert = conn.wants_write();
                    drop(conn);
                    if alert {
                        (me.wants_write)();
                    }
                    if let Err(e) = processed {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))));
                    }
                    if taken > 0 || me.eof {
                        if me.eof && me.pending.is_empty() && taken == 0 {
                            // Nothing more will come: rustls answered above (close_notify: EOF,
                            // else an unexpected-EOF error); if it did not, end the stream.
                            return Poll::Ready(Ok(()));
                        }
                        continue;
                    }
                }
            }
            // More ciphertext is needed (rustls takes what it was given unless its buffers are full,
            // which reading plaintext first prevents; bounded anyway).
            if me.pending.len() > MAX_PENDING {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "TLS: records not taken")));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut me.socket).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => me.eof = true,
                Poll::Ready(Ok(())) => me.pending.extend_from_slice(buf.filled()),
            }
        }
    }
}
