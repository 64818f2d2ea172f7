// Time to the first decoded picture in headless Chromium, for camrelay-bench --first-picture:
// MSE (go2rtc's WebSocket `mse`, as the web UI plays it) and WebRTC (WHEP from the page).
// Usage: node browser_first_picture.mjs API_ADDR RUNS
// Prints one JSON line: {"mse": [{ms, width, height} | {error}], "webrtc": [...]}. The clock starts in
// the page when the client starts (MSE: the WebSocket is created once the MediaSource opened; WebRTC:
// before createOffer) and stops at the first decoded frame (getVideoPlaybackQuality). Playwright comes
// from the browser tests' node_modules (crates/camrelay/tests/browser, `npm ci` there) or PLAYWRIGHT_CORE.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const core = process.env.PLAYWRIGHT_CORE
  || path.join(here, '../../camrelay/tests/browser/node_modules/playwright-core/index.mjs');
const { chromium } = await import(pathToFileURL(core).href);
const [api, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 5);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
    '--disable-features=WebRtcHideLocalIpsWithMdns'],
});

// In the page: resolves with the first decoded frame's time since window.__t0 and the video's size.
function firstFrame() {
  const video = document.querySelector('video');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no frame within 20 s ${window.__error || ''}`)), 20000);
    const tick = () => {
      if (video.getVideoPlaybackQuality().totalVideoFrames > 0 && video.videoWidth > 0) {
        clearTimeout(timer);
        resolve({ ms: performance.now() - window.__t0, width: video.videoWidth, height: video.videoHeight });
        return;
      }
      requestAnimationFrame(tick);
    };
    tick();
  });
}

function startMse(url) {
  const video = document.querySelector('video');
  const ms = new MediaSource();
  video.src = URL.createObjectURL(ms);
  ms.addEventListener('sourceopen', () => {
    window.__t0 = performance.now();
    const ws = new WebSocket(url);
    window.__ws = ws;
    ws.binaryType = 'arraybuffer';
    let sb = null;
    const queue = [];
    const pump = () => { if (sb && !sb.updating && queue.length) sb.appendBuffer(queue.shift()); };
    ws.onopen = () => {
      const codecs = ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'avc1.64001F', 'mp4a.40.2', 'flac', 'opus']
        .filter((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`));
      ws.send(JSON.stringify({ type: 'mse', value: codecs.join(',') }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        const msg = JSON.parse(ev.data);
        if (msg.type === 'mse') { sb = ms.addSourceBuffer(msg.value); sb.mode = 'segments'; sb.onupdateend = pump; }
        else window.__error = msg.value;
      } else { queue.push(ev.data); pump(); }
    };
  });
}

async function startWhep(url) {
  window.__t0 = performance.now();
  const pc = new RTCPeerConnection();
  window.__pc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.ontrack = (ev) => { document.querySelector('video').srcObject = ev.streams[0] || new MediaStream([ev.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) throw new Error(`WHEP: ${res.status} ${await res.text()}`);
  window.__session = res.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
}

const results = { mse: [], webrtc: [] };
try {
  for (let i = 0; i < runs; i++) {
    for (const mode of (i % 2 ? ['webrtc', 'mse'] : ['mse', 'webrtc'])) {
      const page = await browser.newPage();
      try {
        // A page of the server's own origin (WHEP's fetch needs no CORS then).
        await page.goto(`http://${api}/api`);
        await page.evaluate(() => { document.body.innerHTML = '<video muted autoplay playsinline></video>'; });
        if (mode === 'mse') await page.evaluate(startMse, `ws://${api}/api/ws?src=bench`);
        else await page.evaluate(startWhep, `http://${api}/api/webrtc?src=bench`);
        results[mode].push(await page.evaluate(firstFrame));
        if (mode === 'webrtc') {
          await page.evaluate(async (base) => {
            window.__pc.close();
            if (window.__session) await fetch(new URL(window.__session, base), { method: 'DELETE' }).catch(() => {});
          }, `http://${api}/`);
        }
      } catch (e) {
        results[mode].push({ error: String(e.message || e).split('\n')[0] });
      }
      await page.close();
    }
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
