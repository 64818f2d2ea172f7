// Plays AV1 and VP9 over WebRTC (WHEP on /api/webrtc) in headless Chromium: ffmpeg 9 publishes each over
// Enhanced RTMP (SVT-AV1, libvpx-vp9, 320x240, 25 fps) into camrelay; the page waits until getStats'
// inbound video has decoded 30 frames and prints one JSON line: per codec, the codec's mimeType, frames
// decoded, frame size.
// Usage (inside `unshare --net`, see ../rtp_av1_vp9.rs): node webrtc_av1_vp9.mjs CAMRELAY_BIN FFMPEG9_BIN
import { spawn } from 'node:child_process';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const [bin, ffmpeg9] = process.argv.slice(2);
const config = JSON.stringify({
  api: { listen: '127.0.0.1:0', origin: '*' },
  rtsp: { listen: '127.0.0.1:0', rtp_listen: '', rtcp_listen: '' },
  rtmp: { listen: '127.0.0.1:19350' },
  webrtc: { listen: '0.0.0.0:0' },
  streams: { av1: '', vp9: '' },
});
const encoders = {
  av1: ['-c:v', 'libsvtav1', '-preset', '12', '-svtav1-params', 'lp=1'],
  vp9: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-row-mt', '0'],
};
const { api, log, server } = await startCamrelay(bin, ['-c', config]);
const publishers = Object.entries(encoders).map(([name, video]) => spawn(ffmpeg9, [
  '-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', ...video,
  '-pix_fmt', 'yuv420p', '-g', '25', '-t', '120', '-f', 'flv', `rtmp://127.0.0.1:19350/live/${name}`,
], { stdio: 'ignore' }));

const browser = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns']);

// Runs in the page: WHEP with a recvonly video, until 30 frames are decoded (or 30 s pass).
async function play(page, url) {
  return page.evaluate(async ({ url }) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (ev) => { document.querySelector('video').srcObject = new MediaStream([ev.track]); };
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error(`WHEP: ${res.status} ${await res.text()}`);
    const answer = await res.text();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    const deadline = Date.now() + 30000;
    let out = {};
    while (Date.now() < deadline) {
      const stats = await pc.getStats();
      for (const s of stats.values()) {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
        const codec = s.codecId ? stats.get(s.codecId) : null;
        out = { codec: codec && codec.mimeType, frames: s.framesDecoded, width: s.frameWidth, height: s.frameHeight };
      }
      if (out.frames >= 30) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    out.state = pc.connectionState;
    out.answerCodecs = answer.split('\n').filter((l) => l.startsWith('a=rtpmap:')).map((l) => l.trim());
    pc.close();
    return out;
  }, { url });
}

const result = {};
try {
  for (const name of Object.keys(encoders)) {
    // Wait for the publisher to be online.
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      const r = await fetch(`http://${api}/api/streams?src=${name}`);
      const j = r.ok ? await r.json() : {};
      if ((j.producers || []).some((p) => Array.isArray(p.medias) && p.medias.length)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const page = await browser.newPage();
    await page.setContent('<video autoplay playsinline muted></video>');
    result[name] = await play(page, `http://${api}/api/webrtc?src=${name}`);
    await page.close();
    // The web UI's player in its automatic mode: it must pick WebRTC for AV1/VP9 and show 30 frames.
    const ui = await browser.newPage();
    await ui.goto(`http://${api}/stream.html?src=${name}`);
    const deadline2 = Date.now() + 30000;
    let state = {};
    while (Date.now() < deadline2) {
      state = await ui.evaluate(() => {
        const box = document.getElementById('player');
        const video = box && box.querySelector('video');
        return {
          state: box && box.dataset.state, mode: box && box.dataset.mode, skipped: box && box.dataset.skipped,
          error: (document.getElementById('error') || {}).textContent,
          frames: video ? video.getVideoPlaybackQuality().totalVideoFrames : 0,
          width: video ? video.videoWidth : 0, height: video ? video.videoHeight : 0,
        };
      });
      if (state.state === 'playing' && state.frames >= 30) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    result[`${name}_ui`] = state;
    await ui.close();
  }
} catch (e) {
  result.error = String(e && e.stack || e);
}
result.log = log.filter((l) => /webrtc|WRN|ERR/.test(l)).slice(-40);
console.log(JSON.stringify(result));
await browser.close();
for (const p of publishers) p.kill('SIGTERM');
server.kill('SIGTERM');
process.exit(0);
