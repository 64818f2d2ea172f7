// Chromium's MSE follows a picture-size change (issue 19): ffmpeg publishes 320x240 over RTSP, the page
// plays it through go2rtc's WebSocket `mse`, the publisher is replaced by a 640x480 one within
// `hub.publisher_grace`, and the same SourceBuffer (a new init segment in the stream) shows the new
// size. Prints one JSON line: the sizes seen, frames decoded, WebSocket reconnects (none).
// Usage (inside `unshare --net`, see ../size_change.rs): node size_change.mjs CAMRELAY_BIN
import { launchChromium, startSizeChangeRig } from './camrelay.mjs';

const bin = process.argv[2];
const { api, log, server, publish, published } = await startSizeChangeRig(bin);
const browser = await launchChromium();
let publisher = publish('320x240');
const result = { sizes: [] };
try {
  await published();
  const page = await browser.newPage();
  await page.setContent('<video muted autoplay playsinline></video>');
  await page.evaluate((url) => {
    window.__opens = 0;
    const video = document.querySelector('video');
    const ms = new MediaSource();
    video.src = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      let sb = null;
      const queue = [];
      const pump = () => { if (sb && !sb.updating && queue.length) sb.appendBuffer(queue.shift()); };
      ws.onopen = () => { window.__opens += 1; ws.send(JSON.stringify({ type: 'mse', value: 'avc1.640029,avc1.42E01E' })); };
      ws.onclose = () => { window.__closed = true; };
      ws.onmessage = (ev) => {
        if (typeof ev.data === 'string') {
          const msg = JSON.parse(ev.data);
          if (msg.type === 'mse') { sb = ms.addSourceBuffer(msg.value); sb.mode = 'segments'; sb.onupdateend = pump; sb.onerror = () => { window.__error = 'SourceBuffer error'; }; }
          else window.__error = msg.value;
        } else { queue.push(ev.data); pump(); }
      };
    });
    // Stay at the live edge.
    setInterval(() => { const r = video.buffered; if (r.length && r.end(r.length - 1) - video.currentTime > 1) video.currentTime = r.end(r.length - 1) - 0.2; }, 200);
  }, `ws://${api}/api/ws?src=cam`);
  // Waits until the video shows `width`, then for 25 more decoded frames.
  const waitFor = (width) => page.evaluate(async (width) => {
    const video = document.querySelector('video');
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting for width ${width}: ${video.videoWidth}x${video.videoHeight}, ${video.getVideoPlaybackQuality().totalVideoFrames} frames, error ${window.__error || (video.error && video.error.message)}`)), 30000);
      let from = null;
      const tick = () => {
        const frames = video.getVideoPlaybackQuality().totalVideoFrames;
        if (video.videoWidth === width && from === null) from = frames;
        if (from !== null && frames >= from + 25) {
          clearTimeout(timer);
          resolve({ width: video.videoWidth, height: video.videoHeight, frames, opens: window.__opens, closed: !!window.__closed, error: window.__error || null });
          return;
        }
        setTimeout(tick, 20);
      };
      tick();
    });
  }, width);
  result.sizes.push(await waitFor(320));
  publisher.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  publisher = publish('640x480');
  result.sizes.push(await waitFor(640));
} catch (e) {
  result.error = String(e);
  result.log = log.slice(-30);
} finally {
  publisher.kill('SIGKILL');
  await browser.close();
  server.kill();
}
console.log(JSON.stringify(result));
