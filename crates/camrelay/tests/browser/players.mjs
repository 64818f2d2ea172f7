// Plays a camrelay stream in headless Chromium through MSE (WebSocket `mse`) and through a plain
// <video src=stream.mp4>, and prints one JSON line per mode: decoded frames, size, time to first frame.
// Usage (inside `unshare --net`, see ../browser.rs): node players.mjs CAMRELAY_BIN
import { startCamrelay, launchChromium } from './camrelay.mjs';

const bin = process.argv[2];
// WebRTC announces the namespace's veth address (browser.rs sets it up): Chromium gathers no candidates
// on loopback alone.
// The server gathers it from the interfaces (it listens on all of them).
const config = (listen) => `{"api":{"listen":"127.0.0.1:0","origin":"*"},"rtsp":{"listen":"127.0.0.1:0","rtp_listen":"","rtcp_listen":""},"webrtc":{"listen":"${listen}"}}`;
const servers = [];
// Starts camrelay; resolves with its API address.
async function startServer(listen) {
  const { api, server } = await startCamrelay(bin, ['-c', config(listen)]);
  servers.push(server);
  return api;
}
const api = await startServer('0.0.0.0:0');

// Real host candidates (not mDNS names) inside the test's private namespace.
const browser = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns']);

// Runs in the page: resolves once `frames` frames decoded (or rejects after a timeout).
async function measure(page, frames) {
  return page.evaluate(async (frames) => {
    const video = document.querySelector('video');
    return await new Promise((resolve, reject) => {
      let first = null;
      const timer = setTimeout(() => reject(new Error(`timeout: ${video.getVideoPlaybackQuality().totalVideoFrames} frames, error ${video.error && video.error.message}`)), 30000);
      const tick = () => {
        const q = video.getVideoPlaybackQuality();
        // __t0 is set when the request starts (for MSE, once the MediaSource opened).
        if (first === null && q.totalVideoFrames > 0) first = performance.now() - window.__t0;
        if (q.totalVideoFrames >= frames) {
          clearTimeout(timer);
          resolve({ frames: q.totalVideoFrames, width: video.videoWidth, height: video.videoHeight, first_frame_ms: first });
          return;
        }
        video.requestVideoFrameCallback ? video.requestVideoFrameCallback(tick) : setTimeout(tick, 10);
      };
      tick();
    });
  }, frames);
}

const results = {};
try {
  // MSE over go2rtc's WebSocket API.
  const mse = await browser.newPage();
  await mse.setContent('<video muted autoplay playsinline></video>');
  await mse.evaluate((url) => {
    const video = document.querySelector('video');
    const ms = new MediaSource();
    video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      window.__t0 = performance.now();
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      let sb = null;
      const queue = [];
      const pump = () => { if (sb && !sb.updating && queue.length) sb.appendBuffer(queue.shift()); };
      ws.onopen = () => {
        const codecs = ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'hvc1.1.6.L153.B0', 'mp4a.40.2', 'mp4a.40.5', 'flac', 'opus']
          .filter((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`));
        ws.send(JSON.stringify({ type: 'mse', value: codecs.join(',') }));
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data === 'string') {
          const msg = JSON.parse(ev.data);
          if (msg.type === 'mse') { window.__mime = msg.value; sb = ms.addSourceBuffer(msg.value); sb.mode = 'segments'; sb.onupdateend = pump; }
          else window.__error = msg.value;
        } else { queue.push(ev.data); pump(); }
      };
    });
  }, `ws://${api}/api/ws?src=demo`);
  results.mse = await measure(mse, 50);
  results.mse.mime = await mse.evaluate(() => window.__mime);

  // WebRTC: WHEP from the page (recvonly video), answered by the server's ICE-lite agent.
  const whep = async (url) => {
    window.__t0 = performance.now();
    const pc = new RTCPeerConnection();
    window.__pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (ev) => { document.querySelector('video').srcObject = ev.streams[0] || new MediaStream([ev.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error(`WHEP: ${res.status} ${await res.text()}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  };
  // The transport of the candidate pair in use ('udp' or 'tcp').
  const transport = async () => {
    const stats = await window.__pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        return stats.get(pair.remoteCandidateId).protocol;
      }
    }
    return null;
  };
  const rtc = await browser.newPage();
  await rtc.setContent('<video muted autoplay playsinline></video>');
  await rtc.evaluate(whep, `http://${api}/api/webrtc?src=demo`);
  results.webrtc = await measure(rtc, 50);
  results.webrtc.state = await rtc.evaluate(() => window.__pc.connectionState);
  results.webrtc.transport = await rtc.evaluate(transport);

  // WebRTC over ICE-TCP: a server that listens on TCP only.
  const tcpApi = await startServer('0.0.0.0:0/tcp');
  const rtcTcp = await browser.newPage();
  await rtcTcp.setContent('<video muted autoplay playsinline></video>');
  await rtcTcp.evaluate(whep, `http://${tcpApi}/api/webrtc?src=demo`);
  results.webrtc_tcp = await measure(rtcTcp, 50);
  results.webrtc_tcp.transport = await rtcTcp.evaluate(transport);

  // WebRTC signalled over go2rtc's WebSocket (`webrtc/offer` → `webrtc/answer`).
  const rtcws = await browser.newPage();
  await rtcws.setContent('<video muted autoplay playsinline></video>');
  await rtcws.evaluate(async (url) => {
    window.__t0 = performance.now();
    const pc = new RTCPeerConnection();
    window.__pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (ev) => { document.querySelector('video').srcObject = ev.streams[0] || new MediaStream([ev.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    const ws = new WebSocket(url);
    window.__ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = () => ws.send(JSON.stringify({ type: 'webrtc/offer', value: pc.localDescription.sdp }));
      ws.onmessage = async (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === 'webrtc/answer') { await pc.setRemoteDescription({ type: 'answer', sdp: msg.value }); resolve(); }
        else reject(new Error(JSON.stringify(msg)));
      };
      ws.onerror = () => reject(new Error('websocket error'));
    });
  }, `ws://${api}/api/ws?src=demo`);
  results.webrtc_ws = await measure(rtcws, 50);

  // Progressive MP4 in a plain <video>.
  const mp4 = await browser.newPage();
  await mp4.setContent('<video muted autoplay playsinline></video>');
  await mp4.evaluate((url) => { window.__t0 = performance.now(); document.querySelector('video').src = url; }, `http://${api}/api/stream.mp4?src=demo`);
  results.mp4 = await measure(mp4, 50);

  // The WebSocket's other requests: mjpeg (JPEG images as binary messages) and hls (a master playlist).
  const ws = await browser.newPage();
  await ws.setContent('<p>ws</p>');
  results.ws = await ws.evaluate(async (base) => {
    const ask = (type, done) => new Promise((resolve, reject) => {
      const sock = new WebSocket(`${base}&t=${type}`);
      sock.binaryType = 'arraybuffer';
      const state = { jpegs: 0, text: null };
      const timer = setTimeout(() => { sock.close(); reject(new Error(`${type}: timeout ${JSON.stringify(state)}`)); }, 30000);
      sock.onopen = () => sock.send(JSON.stringify({ type }));
      sock.onmessage = (ev) => {
        if (typeof ev.data === 'string') state.text = JSON.parse(ev.data);
        else { const b = new Uint8Array(ev.data); if (b[0] === 0xff && b[1] === 0xd8) state.jpegs += 1; }
        if (done(state)) { clearTimeout(timer); sock.close(); resolve(state); }
      };
    });
    const mjpeg = await ask('mjpeg', (s) => s.jpegs >= 10);
    const hls = await ask('hls', (s) => s.text !== null);
    return { mjpeg_images: mjpeg.jpegs, hls_type: hls.text.type, hls_playlist: hls.text.value };
  }, `ws://${api}/api/ws?src=demo`);
} catch (e) {
  results.error = String(e && e.message || e);
} finally {
  await browser.close();
  for (const s of servers) s.kill('SIGTERM');
}
console.log(JSON.stringify(results));
process.exit(results.error ? 1 : 0);
