//! One peer connection: its task, str0m's sans-IO loop, and the frames it sends.

use super::*;

/// A session that does not connect within this time is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A connected peer that sends nothing (no STUN consent checks, no RTCP) for this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// One reader track and where it goes in the peer connection.
pub(super) struct Outgoing {
    pub(super) mid: Mid,
    pub(super) pt: Pt,
    pub(super) annexb: bool,
    pub(super) needs_keyframe: bool,
    pub(super) freq: Frequency,
    pub(super) clock: media::timestamp::Unwrapper,
}

impl Outgoing {
    /// The frame's RTP timestamp extended to 64 bits (str0m's media time does not wrap).
    pub(super) fn media_time(&mut self, ts: u32) -> MediaTime {
        // Start a turn high so a small step back never goes below zero.
        let extended = ((1i64 << 32) + self.clock.extend(ts)).max(0) as u64;
        MediaTime::new(extended, self.freq)
    }
}

pub(super) async fn next_delivery(reader: &mut Option<Reader>) -> Option<crate::hub::Delivery> {
    match reader {
        Some(r) => r.queue.recv().await,
        None => std::future::pending().await,
    }
}

pub(super) struct Session {
    pub(super) id: String,
    pub(super) server: Arc<Server>,
    /// The local candidates its answer listed.
    pub(super) candidates: Vec<super::candidates::LocalCandidate>,
    pub(super) rtc: Rtc,
    /// Playing (WHEP): the hub reader and where each of its tracks goes.
    pub(super) reader: Option<Reader>,
    /// Playing audio the peer could not take as it was: a reader of the stream's transcoder, whose
    /// track's place in `outgoing` follows `reader`'s.
    pub(super) transcoded: Option<Reader>,
    pub(super) outgoing: Vec<Option<Outgoing>>,
    /// Publishing (WHIP): the publisher's place in the stream (dropping it removes the producer).
    pub(super) publish: Option<crate::hub::PublishGuard>,
    pub(super) incoming: Vec<Incoming>,
    /// Playing with a microphone: the source whose backchannel `incoming` feeds (kept connected).
    pub(super) backchannel: Option<Arc<Producer>>,
    pub(super) rx: mpsc::Receiver<Datagram>,
    pub(super) cancel: CancellationToken,
    pub(super) timeout: Instant,
}

pub(super) enum Step {
    Continue,
    End(&'static str),
}

/// The session leaves the registry and gives back what it held however its task ends (also by a
/// panic): otherwise its slot would count against the session limit for ever.
impl Drop for Session {
    fn drop(&mut self) {
        self.server.remove(&self.id);
        if let Some(publish) = self.publish.take() {
            drop(publish);
            tracing::info!("webrtc publisher disconnected");
        }
        if let Some(producer) = self.backchannel.take() {
            producer.remove_reader();
        }
    }
}

impl Session {
    pub(super) async fn run(mut self) {
        tracing::info!("webrtc session started");
        let connect_deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let mut connected = false;
        let mut last_rx = tokio::time::Instant::now();
        let why = loop {
            let timeout = tokio::time::Instant::from_std(self.timeout);
            let step = tokio::select! {
                _ = self.cancel.cancelled() => Step::End("closed"),
                _ = tokio::time::sleep_until(connect_deadline), if !connected => Step::End("ICE timeout"),
                _ = tokio::time::sleep_until(last_rx + IDLE_TIMEOUT), if connected => Step::End("peer silent"),
                _ = tokio::time::sleep_until(timeout) => self.input(Input::Timeout(Instant::now())),
                d = self.rx.recv() => match d {
                    Some(d) => {
                        last_rx = tokio::time::Instant::now();
                        self.receive(d)
                    }
                    None => Step::End("closed"),
                },
                // Frames (the GOP cache first) wait in the reader's queue until the peer is connected, so
                // the picture starts at once instead of at the next keyframe.
                d = next_delivery(&mut self.reader), if connected => match d {
                    Some(d) => self.write(d.slot, &d.frame),
                    None => Step::End("stream ended"),
                },
                d = next_delivery(&mut self.transcoded), if connected => match d {
                    Some(d) => {
                        let first = self.reader.as_ref().map_or(0, |r| r.tracks.len());
                        self.write(first + d.slot, &d.frame)
                    }
                    // The transcoder stopped (its source's audio ended): the video goes on.
                    None if self.reader.is_some() => {
                        self.transcoded = None;
                        Step::Continue
                    }
                    None => Step::End("stream ended"),
                },
            };
            if let Step::End(why) = step {
                break why;
            }
            match self.drain().await {
                Ok(now_connected) => connected |= now_connected,
                Err(why) => break why,
            }
        };
        self.rtc.disconnect();
        tracing::info!("webrtc session ended: {why}");
    }

    pub(super) fn input(&mut self, input: Input) -> Step {
        match self.rtc.handle_input(input) {
            Ok(()) => Step::Continue,
            Err(e) => {
                tracing::debug!("webrtc input: {e}");
                Step::Continue
            }
        }
    }

    pub(super) fn receive(&mut self, d: Datagram) -> Step {
        let Ok(contents) = d.data.as_slice().try_into() else { return Step::Continue };
        let Some(net) = self.server.net.get() else { return Step::Continue };
        let (proto, destination) = match d.tcp {
            // A TCP connection knows the address it was reached on.
            Some(local) => (Protocol::Tcp, local),
            // The UDP socket may be bound to all interfaces: name the candidate the peer most likely
            // reached (its own address when on this host, else one of its family and scope); ICE
            // matches the destination against the local candidates.
            None => {
                let udp = || self.candidates.iter().filter(|c| !c.tcp).map(|c| c.addr);
                let ip = d.source.ip();
                let destination = udp()
                    .find(|a| a.ip() == ip)
                    .or_else(|| udp().find(|a| a.ip().is_loopback() == ip.is_loopback() && a.is_ipv4() == ip.is_ipv4()))
                    .or_else(|| udp().next())
                    .unwrap_or(net.local);
                (Protocol::Udp, destination)
            }
        };
        let input = Input::Receive(Instant::now(), Receive { proto, source: d.source, destination, contents });
        if !self.rtc.accepts(&input) {
            return Step::Continue;
        }
        self.input(input)
    }

    pub(super) fn write(&mut self, slot: usize, frame: &media::Frame) -> Step {
        let Some(Some(out)) = self.outgoing.get_mut(slot) else { return Step::Continue };
        if out.needs_keyframe {
            if !frame.keyframe {
                return Step::Continue;
            }
            out.needs_keyframe = false;
        }
        let payload: Vec<u8> =
            if out.annexb { media::h264::avcc_to_annexb(&frame.payload) } else { frame.payload.to_vec() };
        let (mid, pt) = (out.mid, out.pt);
        let time = out.media_time(frame.timestamp);
        let Some(writer) = self.rtc.writer(mid) else { return Step::Continue };
        let len = payload.len() as u64;
        if let Err(e) = writer.write(pt, Instant::now(), time, payload) {
            tracing::debug!("webrtc write: {e}");
        } else {
            let first = self.reader.as_ref().map_or(0, |r| r.tracks.len());
            let reader = if slot < first { &self.reader } else { &self.transcoded };
            if let Some(r) = reader {
                r.shared.count_sent(1, len);
            }
        }
        Step::Continue
    }

    /// Polls str0m until its next timeout, sending what it transmits; `Ok(true)` once ICE connected.
    pub(super) async fn drain(&mut self) -> Result<bool, &'static str> {
        let mut connected = false;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return Ok(connected);
                }
                Ok(Output::Transmit(t)) => self.server.transmit(&t).await,
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        tracing::info!("webrtc connected");
                        connected = true;
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Err("ICE disconnected")
                    }
                    Event::Closed => return Err("peer closed"),
                    Event::MediaData(d) => {
                        let codec = d.params.spec().codec;
                        if let Some(i) = self.incoming.iter_mut().find(|i| i.mid == d.mid && i.accepts(codec)) {
                            i.push(d.time, &d.data);
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    tracing::debug!("webrtc: {e}");
                    return Err("WebRTC error");
                }
            }
            if !self.rtc.is_alive() {
                return Err("peer closed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_time_extends_across_wrap() {
        let mut o = Outgoing {
            mid: Mid::from("0"),
            pt: Pt::new_with_value(96),
            annexb: true,
            needs_keyframe: true,
            freq: Frequency::NINETY_KHZ,
            clock: Default::default(),
        };
        let a = o.media_time(u32::MAX - 10).numer();
        let b = o.media_time(5).numer();
        assert_eq!(b - a, 16);
    }
}
