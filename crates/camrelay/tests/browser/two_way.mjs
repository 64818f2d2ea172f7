// Two-way audio from headless Chromium's fake microphone (a beep) into GStreamer ONVIF cameras with a
// G.711 backchannel (../fixtures/gst_camera.py), through camrelay's WebRTC server. Prints one JSON line.
// Usage (inside `unshare --net` with the veth address 10.99.0.1, see ../two_way_webrtc.rs):
//   node two_way.mjs CAMRELAY_BIN GST_CAMERA_PY OUT_DIR SECONDS
// Two cameras: `pcma` (PCMA backchannel) and `pcmu` (PCMU). Each writes what it receives to
// OUT_DIR/<name>.g711 and GStreamer's decoding of it (S16LE 8 kHz mono) to OUT_DIR/<name>.s16le.
//   player: the player page (stream.html?src=pcma&media=video+audio+microphone) sends the microphone
//           for SECONDS; Chromium offers Opus, PCMU, PCMA... and the answer puts PCMA first.
//   opus:   a page of its own with go2rtc's web UI offer (video recvonly, audio recvonly, microphone
//           sendonly) whose microphone offers only Opus, into `pcmu`: camrelay transcodes it.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const [bin, gstCamera, out, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 4);
mkdirSync(out, { recursive: true });

/** Starts gst_camera.py on `port` with a `codec` backchannel; resolves once it prints READY. */
function camera(port, codec) {
  const child = spawn('/usr/bin/python3', [gstCamera, String(port), '--backchannel', join(out, `${codec}.g711`),
    '--backchannel-codec', codec, '--backchannel-pcm', join(out, `${codec}.s16le`)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gst_camera.py ${codec} did not start`)), 20000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'READY') { clearTimeout(timer); resolve(child); }
    });
    child.on('exit', (code) => reject(new Error(`gst_camera.py ${codec} exited with ${code}`)));
  });
}

const size = (name) => { try { return statSync(join(out, `${name}.s16le`)).size; } catch (_) { return 0; } };

/** Polls `fn` every 100 ms until it returns a truthy value; that value, or null after `ms`. */
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the camera's file stops growing (a whole second without a new byte). */
async function settled(name) {
  return !!await until(async () => {
    const before = size(name);
    await new Promise((r) => setTimeout(r, 1000));
    return size(name) === before;
  }, 10000);
}

const cameras = [await camera(18654, 'pcma'), await camera(18655, 'pcmu')];
const config = JSON.stringify({
  api: { listen: '127.0.0.1:0' },
  rtsp: { listen: '127.0.0.1:0', rtp_listen: '', rtcp_listen: '' },
  // Chromium gathers no candidates on loopback alone: the namespace's veth address is announced.
  webrtc: { listen: '0.0.0.0:0', candidates: ['10.99.0.1'] },
  streams: { pcma: 'rtsp://127.0.0.1:18654/test', pcmu: 'rtsp://127.0.0.1:18655/test' },
});
const { api, log, server } = await startCamrelay(bin, ['-c', config]);
const root = `http://${api}/`;

// A microphone that beeps, allowed without a prompt.
const browser = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);

/** The outbound audio's getStats of `pc` (in the page): codec, packets, bytes, and the answer's audio lines. */
const statsOf = (page, expr) => page.evaluate(async (expr) => {
  const pc = eval(expr); // eslint-disable-line no-eval
  const stats = await pc.getStats();
  const out = { connection: pc.connectionState };
  for (const s of stats.values()) {
    if (s.type === 'outbound-rtp' && s.kind === 'audio') {
      const codec = s.codecId ? stats.get(s.codecId) : null;
      out.mic = { codec: codec && codec.mimeType, clock: codec && codec.clockRate, packets: s.packetsSent, bytes: s.bytesSent };
    }
    if (s.type === 'inbound-rtp') {
      if (s.kind === 'video') out.video_frames = s.framesDecoded;
      else {
        const codec = s.codecId ? stats.get(s.codecId) : null;
        out.camera_audio = { codec: codec && codec.mimeType, packets: s.packetsReceived, samples: s.totalSamplesReceived };
      }
    }
  }
  const sections = pc.remoteDescription.sdp.split(/\r?\n(?=m=)/).filter((x) => x.startsWith('m=audio'));
  out.answer_audio = sections.map((x) => (x.match(/^a=(sendrecv|sendonly|recvonly|inactive)/m) || [])[1]);
  out.offer_audio = pc.localDescription.sdp.split(/\r?\n(?=m=)/).filter((x) => x.startsWith('m=audio'))
    .map((x) => (x.match(/^a=(sendrecv|sendonly|recvonly|inactive)/m) || [])[1]);
  return out;
}, expr);

const result = {};
try {
  // The player page's microphone into the PCMA camera.
  {
    const page = await browser.newPage();
    await page.goto(`${root}stream.html?src=pcma&media=video+audio+microphone`);
    await page.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
    const state = await page.evaluate(() => ({
      state: document.getElementById('player').dataset.state,
      mode: document.getElementById('player').dataset.mode,
      mic: document.getElementById('player').dataset.mic,
      error: document.getElementById('error').textContent,
    }));
    const start = Date.now();
    await until(() => size('pcma') >= seconds * 16000, (seconds + 15) * 1000);
    const stats = await statsOf(page, 'window.camrelay.pc');
    await page.close();
    result.player = { ...state, ...stats, sent_ms: Date.now() - start, settled: await settled('pcma') };
  }
  // go2rtc's web UI offer with an Opus-only microphone into the PCMU camera.
  {
    const page = await browser.newPage();
    await page.goto(root);
    const sent = await page.evaluate(async ({ url, seconds }) => {
      const pc = new RTCPeerConnection();
      window.__pc = pc;
      // The camera's picture and sound play in a video element (Chromium decodes audio it plays).
      const video = document.createElement('video');
      video.autoplay = true;
      document.body.appendChild(video);
      const remote = new MediaStream();
      pc.ontrack = (ev) => { remote.addTrack(ev.track); video.srcObject = remote; };
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      const tr = pc.addTransceiver(mic.getAudioTracks()[0], { direction: 'sendonly' });
      tr.setCodecPreferences(RTCRtpSender.getCapabilities('audio').codecs.filter((c) => c.mimeType.toLowerCase() === 'audio/opus'));
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      if (res.status !== 201) throw new Error(`WHEP: ${res.status} ${await res.text()}`);
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      const connected = Date.now();
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`not connected: ${pc.connectionState}`)), 15000);
        const check = () => { if (pc.connectionState === 'connected') { clearTimeout(t); resolve(); } };
        pc.onconnectionstatechange = check;
        check();
      });
      await new Promise((r) => setTimeout(r, seconds * 1000));
      return { connect_ms: Date.now() - connected - seconds * 1000 };
    }, { url: `${root}api/webrtc?src=pcmu`, seconds });
    const stats = await statsOf(page, 'window.__pc');
    // Closing the peer connection stops the microphone: what the camera got is `seconds` and a bit.
    await page.evaluate(() => window.__pc.close());
    await page.close();
    result.opus = { ...sent, ...stats, settled: await settled('pcmu') };
  }
} catch (e) {
  result.error = String(e && e.stack || e);
}
result.log = log.filter((l) => /two-way|backchannel|transcod|WRN|ERR/.test(l)).slice(-40);
console.log(JSON.stringify(result));
await browser.close();
server.kill('SIGTERM');
for (const c of cameras) c.kill('SIGTERM');
process.exit(0);
