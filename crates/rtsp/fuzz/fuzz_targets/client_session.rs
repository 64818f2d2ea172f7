#![no_main]
//! Drives the RTSP client session machine (`rtsp::client::RtspClient`) with arbitrary camera bytes,
//! datagrams, clock steps and commands, in play and in record (RTSP push) sessions. Besides "never
//! panics": the machine never asks to be woken in the past (a driver would spin), and nothing follows
//! `Error` or `Closed`.
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use media::{Codec, Direction, Kind, Media, RtpPacket};
use rtsp::client::{ClientOptions, Event, RtspClient, SourceUrl};
use std::time::{Duration, Instant};

const URLS: [&str; 4] = [
    "rtsp://admin:pw@cam:554/x",
    "rtsp://cam/x#backchannel=0",
    "rtsp://u:p@cam/x#transport=udp",
    "rtsps://cam/x#media=video#timeout=2",
];

struct Run {
    client: RtspClient,
    now: Instant,
    ended: bool,
}

impl Run {
    fn drain(&mut self) {
        while let Some(b) = self.client.poll_transmit() {
            assert!(!b.is_empty());
        }
        while self.client.poll_datagram().is_some() {}
        while let Some(e) = self.client.poll_event() {
            assert!(!self.ended, "{e:?} after the end");
            if matches!(e, Event::Error(_) | Event::Closed) {
                self.ended = true;
            }
        }
        if self.ended {
            assert_eq!(self.client.poll_timeout(), None, "a deadline after the end");
        }
    }

    /// Moves the clock by `by`, waking the machine at every deadline on the way.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(d) = self.client.poll_timeout() {
            if d > target {
                break;
            }
            self.now = self.now.max(d);
            self.client.handle_timeout(self.now);
            self.drain();
            if let Some(next) = self.client.poll_timeout() {
                assert!(next > self.now, "deadline not moved past now");
            }
        }
        self.now = target;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else { return };
    let url = SourceUrl::parse(URLS[usize::from(first & 3)]).expect("valid URL");
    let options = ClientOptions { ssrc: 7, initial_sequence: u16::MAX - 1, cname: "fuzz".into() };
    let now = Instant::now();
    // Bit 2 of the first byte: a record session (RTSP push: ANNOUNCE, SETUP mode=record, RECORD).
    let client = if first & 4 != 0 {
        let medias = vec![
            Media::new(Kind::Video, Direction::SendOnly, vec![Codec::new("H264", 90000, 0, 96)]),
            Media::new(Kind::Audio, Direction::SendOnly, vec![Codec::new("PCMA", 8000, 1, 8)]),
        ];
        RtspClient::record(url, options, medias, now)
    } else {
        RtspClient::new(url, options, now)
    };
    let mut run = Run { client, now, ended: false };
    run.drain();
    while let Some((&op, r)) = rest.split_first() {
        rest = r;
        let arg = usize::from(op >> 3);
        match op & 7 {
            // Camera bytes: the next 1..=256 bytes (arg picks a length class).
            0 | 1 | 2 => {
                let n = (arg * 8 + 1).min(rest.len());
                let (chunk, r) = rest.split_at(n);
                rest = r;
                run.client.handle_input(chunk, run.now);
            }
            3 => run.advance(Duration::from_millis(arg as u64 * 700)),
            4 => {
                let n = rest.len().min(64);
                let (chunk, r) = rest.split_at(n);
                rest = r;
                run.client.handle_datagram(arg & 3, arg & 4 != 0, Bytes::copy_from_slice(chunk), run.now);
            }
            5 => run.client.play((0..(arg % 4)).map(|i| (5000 + 2 * i as u16, 5001 + 2 * i as u16)).collect(), run.now),
            6 => {
                let packets: Vec<RtpPacket> = (0..arg % 3)
                    .map(|i| RtpPacket {
                        marker: i == 0,
                        payload_type: 0,
                        sequence: 0,
                        timestamp: i as u32 * 160,
                        ssrc: 0,
                        payload: Bytes::from(vec![0xd5; 160]),
                    })
                    .collect();
                if arg & 4 != 0 {
                    run.client.send_sender_report(arg & 1, arg as u64 * 0x1_0000_0001, arg as u32 * 3000);
                } else if arg & 2 != 0 {
                    run.client.send_rtp(arg & 1, &packets);
                } else {
                    run.client.send_backchannel(arg & 1, &packets);
                }
            }
            _ => match arg % 4 {
                0 => run.client.handle_disconnect("connection closed by camera", run.now),
                1 => run.client.handle_reconnected(run.now),
                2 => run.client.teardown(run.now),
                _ => {
                    if let Some(d) = run.client.described() {
                        let ports = d.medias.iter().enumerate().map(|(i, _)| (6000 + 2 * i as u16, 6001)).collect();
                        run.client.play(ports, run.now);
                    }
                }
            },
        }
        run.drain();
    }
    run.client.teardown(run.now);
    run.drain();
});
