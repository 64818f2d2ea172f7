// hls.js follows a picture-size change (issue 19): ffmpeg publishes 320x240 over RTSP, two hls.js players
// (1.7.4 light, the copy camrelay serves) play go2rtc's HLS URLs of the stream (LL-HLS `&ll`, fMP4 parts;
// and MPEG-TS, which hls.js transmuxes), the publisher is replaced by a 640x480 one within
// `hub.publisher_grace`, and the same players show the new size (the server starts a segment marked
// #EXT-X-DISCONTINUITY: fMP4 with a new #EXT-X-MAP, TS with the new SPS). Prints one JSON line per run:
// for each player the sizes seen with the frames decoded, and hls.js's errors.
// Usage (inside `unshare --net`, see ../hls.rs): node hls_size_change.mjs CAMRELAY_BIN
import { launchChromium, startSizeChangeRig } from './camrelay.mjs';

const bin = process.argv[2];
const { api, log, server, publish, published } = await startSizeChangeRig(bin);
const browser = await launchChromium();
let publisher = publish('320x240');
const variants = ['&ll', ''];
const result = { players: {} };
try {
  await published();
  const page = await browser.newPage();
  await page.goto(`http://${api}/vendor/hls.light.min.js`);
  await page.addScriptTag({ url: `http://${api}/vendor/hls.light.min.js` });
  await page.evaluate((variants) => {
    window.__players = {};
    for (const v of variants) {
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      document.body.appendChild(video);
      const hls = new Hls({ lowLatencyMode: v === '&ll' });
      const p = { video, hls, errors: [], fatal: null };
      hls.on(Hls.Events.ERROR, (_, d) => { p.errors.push(`${d.details}${d.fatal ? ' (fatal)' : ''}`); if (d.fatal) p.fatal = d.details; });
      // The stream may not be there yet: start once the first request answers (retried by the loop below).
      hls.loadSource(`/api/stream.m3u8?src=cam${v}`);
      hls.attachMedia(video);
      window.__players[v] = p;
    }
  }, variants);
  // Waits until the player of `v` shows `width`, then for 25 more decoded frames.
  const waitFor = (v, width) => page.evaluate(async ({ v, width }) => {
    const p = window.__players[v];
    const video = p.video;
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${v}: timeout waiting for width ${width}: ${video.videoWidth}x${video.videoHeight}, ${video.getVideoPlaybackQuality().totalVideoFrames} frames, hls.js errors ${p.errors.join(', ')}`)), 40000);
      let from = null;
      const tick = () => {
        if (p.fatal) { clearTimeout(timer); reject(new Error(`${v}: hls.js fatal error ${p.fatal}`)); return; }
        const frames = video.getVideoPlaybackQuality().totalVideoFrames;
        if (video.videoWidth === width && from === null) from = frames;
        if (from !== null && frames >= from + 25) {
          clearTimeout(timer);
          resolve({ width: video.videoWidth, height: video.videoHeight, frames });
          return;
        }
        setTimeout(tick, 20);
      };
      tick();
    });
  }, { v, width });
  for (const v of variants) result.players[v || 'ts'] = { sizes: [await waitFor(v, 320)] };
  publisher.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  publisher = publish('640x480');
  for (const v of variants) result.players[v || 'ts'].sizes.push(await waitFor(v, 640));
  const errors = await page.evaluate(() => Object.fromEntries(Object.entries(window.__players).map(([v, p]) => [v || 'ts', p.errors])));
  for (const [k, e] of Object.entries(errors)) result.players[k].errors = e;
} catch (e) {
  result.error = String(e);
  result.log = log.slice(-30);
} finally {
  publisher.kill('SIGKILL');
  await browser.close();
  server.kill();
}
console.log(JSON.stringify(result));
