// The recordings timeline (timeline.html) in headless Chromium: camrelay records the demo stream (the
// playback server on a port of its own), the page draws the spans it lists through the API listener,
// a click plays from that time in a <video> (progressive MP4 from api/playback/get); then hls.js plays
// the span's VOD playlist (format=hls) and seeks in it. Prints one JSON line of findings.
// Usage (inside `unshare --net`, see ../timeline.rs): node timeline.mjs CAMRELAY_BIN SCREENSHOT_DIR
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const [bin, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'camrelay-timeline-'));
const file = join(dir, 'camrelay.yaml');
writeFileSync(file, `# camrelay timeline test
streams:
  demo: demo:clip
record:
  path: ${dir}/rec/%path/%Y-%m-%d_%H-%M-%S-%f
  segment_duration: 2s
  part_duration: 200ms
  streams: [demo]
playback:
  listen: 127.0.0.1:0
`);
const base = '{"api":{"listen":"127.0.0.1:0"},"rtsp":{"listen":""}}';
const { api, log, server } = await startCamrelay(bin, ['-c', base, '-c', file], { cwd: dir });
const root = `http://${api}/`;
const results = {};
const errors = [];
let browser;
try {
  // The playback server has its own port; the page only ever talks to the API's.
  results.playback_listen = await waitFor(() => log.map((l) => l.match(/\[playback\] listen addr=(\S+)/)).find(Boolean)?.[1], 10000);
  // A few seconds recorded: one span of at least 5 s.
  results.listed = await waitFor(async () => {
    const r = await fetch(`${root}api/playback/list?path=demo`);
    if (!r.ok) return null;
    const spans = await r.json();
    return spans.length && spans[0].duration >= 5 ? spans : null;
  }, 40000);

  browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  await page.goto(`${root}timeline.html?src=demo`);
  // The spans drawn, as listed.
  await page.waitForSelector('#spans .span', { timeout: 30000 });
  results.drawn = await page.evaluate(() => [...document.querySelectorAll('#spans .span')].map((s) => {
    const r = s.getBoundingClientRect();
    return { start: s.dataset.start, duration: Number(s.dataset.duration), width: r.width, left: r.left };
  }));
  results.title = await page.textContent('#title');
  // Everything: the span fills the timeline, so a click lands inside it.
  await page.selectOption('#window', 'all');
  const bar = await page.locator('#spans .span').first().boundingBox();
  results.bar = bar;
  const clickAt = 0.4;
  await page.mouse.click(bar.x + bar.width * clickAt, bar.y + bar.height / 2);
  await page.waitForFunction(() => {
    const v = document.getElementById('video');
    return v.currentTime > 0.5 && v.videoWidth > 0;
  }, null, { timeout: 30000 });
  results.video = await page.evaluate(async () => {
    const v = document.getElementById('video');
    const t0 = v.currentTime;
    const f0 = v.getVideoPlaybackQuality().totalVideoFrames;
    await new Promise((r) => setTimeout(r, 1500));
    return {
      src: v.currentSrc, start: v.dataset.start, t0, t1: v.currentTime, paused: v.paused,
      frames0: f0, frames1: v.getVideoPlaybackQuality().totalVideoFrames,
      width: v.videoWidth, height: v.videoHeight, duration: v.duration,
      cursor: !document.getElementById('cursor').hidden, at: document.getElementById('at').textContent,
      error: document.getElementById('error').textContent,
    };
  });
  await page.screenshot({ path: join(shots, 'timeline.png'), fullPage: true });

  // hls.js (the UI's copy) plays the span's VOD playlist from the API listener, and seeks in it.
  const span = results.listed[0];
  const hlsUrl = `api/playback/get?path=demo&start=${encodeURIComponent(span.start)}&duration=${span.duration}&format=hls`;
  results.hls = await page.evaluate(async (url) => {
    await new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = 'vendor/hls.light.min.js';
      s.onload = resolve;
      s.onerror = () => reject(new Error('hls.js did not load'));
      document.head.append(s);
    });
    const v = document.createElement('video');
    v.muted = true;
    document.body.append(v);
    const hls = new window.Hls();
    const errs = [];
    hls.on(window.Hls.Events.ERROR, (_, d) => errs.push(`${d.type}/${d.details}${d.fatal ? ' fatal' : ''}`));
    const levels = new Promise((r) => hls.on(window.Hls.Events.LEVEL_LOADED, (_, d) => r(d.details)));
    hls.loadSource(url);
    hls.attachMedia(v);
    const details = await levels;
    await v.play();
    const wait = (f, ms) => new Promise((resolve) => {
      const end = Date.now() + ms;
      const tick = () => (f() || Date.now() > end ? resolve(f()) : setTimeout(tick, 50));
      tick();
    });
    await wait(() => v.currentTime > 1, 15000);
    const played = v.currentTime;
    // Seek near the end: only the segments there are fetched.
    const target = Math.max(details.totalduration - 2, 0);
    v.currentTime = target;
    await wait(() => v.currentTime > target + 0.5, 15000);
    return {
      vod: details.type, live: details.live, total: details.totalduration, segments: details.fragments.length,
      played, target, after_seek: v.currentTime, width: v.videoWidth, height: v.videoHeight, errors: errs,
    };
  }, hlsUrl);
} catch (e) {
  results.error = String(e && e.stack || e);
  results.log = log.slice(-30);
}
if (errors.length) results.page_errors = errors;
if (browser) await browser.close();
server.kill('SIGTERM');
// The recordings go with the server.
await Promise.race([new Promise((r) => server.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(results));

/** Polls `f` (sync or async) until it returns something truthy; throws after `ms`. */
async function waitFor(f, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${f}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
