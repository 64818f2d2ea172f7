import { launchChromium } from './camrelay.mjs';
// Plays an LL-HLS stream with hls.js (the copy camrelay serves, 1.7.4 light, lowLatencyMode) in headless
// Chromium and prints one JSON line: frames decoded, whether hls.js saw LL-HLS (parts, blocking reload),
// and over the last SECONDS of play the distance to the live edge (`hls.latency`, and
// `hls.liveSyncPosition - video.currentTime`) and the wall-clock delay of the picture shown (now minus
// `hls.playingDate`, the EXT-X-PROGRAM-DATE-TIME the server stamped when the frames arrived): the
// glass-to-glass delay without the camera and the screen.
// Usage: node llhls.mjs HLS_ADDR PATH SECONDS

const [hls, path, seconds] = process.argv.slice(2);
const browser = await launchChromium();

let result;
try {
  const page = await browser.newPage();
  // Same origin as the stream: the script's own URL, then the script from it.
  await page.goto(`http://${hls}/${path}/hls.min.js`);
  await page.addScriptTag({ url: `http://${hls}/${path}/hls.min.js` });
  result = await page.evaluate(async ({ path, seconds }) => {
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    document.body.appendChild(video);
    // As MediaMTX's player page (/PATH/) and the web UI configure it: catch up after a stall.
    const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 });
    const errors = [];
    hls.on(Hls.Events.ERROR, (_, d) => errors.push(`${d.details}${d.fatal ? ' (fatal)' : ''}`));
    // Which request failed, with what status, and where the live edge was then (for stalls under load).
    const failures = [];
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (d.type !== Hls.ErrorTypes.NETWORK_ERROR) return;
      const url = d.part?.url || d.frag?.url || d.context?.url || d.url || '';
      const details = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0]?.details;
      failures.push({
        details: d.details,
        url: url.replace(/^.*\//, '').replace(/id=[0-9a-f]+&?/, ''),
        status: d.response?.code ?? d.networkDetails?.status ?? null,
        text: d.response?.text ?? null,
        atMs: Math.round(performance.now() - t0),
        edge: details ? `${details.endSN}.${details.partList?.length ?? 0}` : null,
      });
    });
    let blocking = 0;
    hls.on(Hls.Events.LEVEL_LOADING, (_, d) => {
      if (/_HLS_msn=/.test(d.url) || d.deliveryDirectives?.msn !== undefined) blocking += 1;
    });
    const t0 = performance.now();
    hls.loadSource(`/${path}/index.m3u8`);
    hls.attachMedia(video);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    while (video.currentTime <= 0 && performance.now() - t0 < 20000) await sleep(50);
    if (video.currentTime <= 0) {
      return { error: `not playing after 20 s; hls.js errors: ${errors.join(', ')}` };
    }
    const firstFrameMs = performance.now() - t0;
    // Let hls.js settle on its target latency, then sample every 100 ms.
    await sleep(3000);
    const samples = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      await sleep(100);
      if (video.paused || !hls.playingDate) continue;
      samples.push({
        latency: hls.latency,
        behindSync: hls.liveSyncPosition - video.currentTime,
        wall: (Date.now() - hls.playingDate.getTime()) / 1000,
      });
    }
    const details = hls.levels[hls.currentLevel >= 0 ? hls.currentLevel : 0]?.details;
    const stat = (key) => {
      const v = samples.map((s) => s[key]).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
      return v.length ? { median: v[Math.floor(v.length / 2)], max: v[v.length - 1], min: v[0] } : null;
    };
    const q = video.getVideoPlaybackQuality();
    return {
      frames: q.totalVideoFrames,
      dropped: q.droppedVideoFrames,
      width: video.videoWidth,
      height: video.videoHeight,
      firstFrameMs,
      samples: samples.length,
      latency: stat('latency'),
      behindSync: stat('behindSync'),
      wall: stat('wall'),
      targetLatency: hls.targetLatency,
      parts: details?.partList?.length ?? 0,
      partTarget: details?.partTarget ?? 0,
      canBlockReload: details?.canBlockReload ?? false,
      blockingReloads: blocking,
      stalls: errors.filter((e) => e.startsWith('bufferStalledError')).length,
      errors,
      failures,
    };
  }, { path, seconds: Number(seconds) });
} catch (e) {
  result = { error: String(e) };
}
await browser.close();
console.log(JSON.stringify(result));
