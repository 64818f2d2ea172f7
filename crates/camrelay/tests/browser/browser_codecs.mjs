// Plays each camera codec combination (H.264 with AAC 44.1 kHz, PCMA 8 kHz, PCMU 8 kHz, PCMA 16 kHz; ffmpeg
// publishing over RTSP with a 440 Hz tone) in headless Chromium through every MSE and HLS mode, and
// prints one JSON line: per mode and combination, the video frames decoded and their size, the audio
// bytes decoded (`webkitAudioDecodedByteCount`) and the tone heard (WebAudio: the media element through
// an AnalyserNode, the loudest frequency), plus ffprobe/ffmpeg's view of the same HTTP URLs (audio codec,
// audio frames decoded) and whether this Chromium's MSE takes H.265.
// Modes: `mse` (go2rtc's WebSocket `mse` with the codecs this browser plays), `mp4` (<video src> of
// `/api/stream.mp4?mp4=flac`), `hls_fmp4` (hls.js, `/api/stream.m3u8?mp4=flac`), `hls_ts` (hls.js,
// `/api/stream.m3u8?video=h264&audio=aac,pcma,pcmu`), `llhls` (hls.js in low-latency mode on MediaMTX's
// `/PATH/index.m3u8`, the default lowLatency variant), `ui_mse` and `ui_hls` (the web UI's player page,
// `stream.html?mode=mse|hls`), `ws_hls` (go2rtc's WebSocket `hls` message with the browser's codecs,
// as its player asks on iPhones; the answered playlist played by hls.js).
// H.265 + AAC: the server's MSE answer and ffprobe's view of `stream.mp4`, played where Chromium's MSE
// takes H.265 (`MediaSource.isTypeSupported`).
// Usage (inside `unshare --net`, see ../browser_codecs.rs): node browser_codecs.mjs CAMRELAY_BIN
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const bin = process.argv[2];
const only = process.argv[3] ? process.argv[3].split(',') : null; // modes to run (all by default)
const RTSP = '127.0.0.1:18554'; // fixed ports: the test's own network namespace
const HLS = '127.0.0.1:18888';
const dir = mkdtempSync(join(tmpdir(), 'camrelay-browser-codecs-'));
const configFile = join(dir, 'mediamtx.yml');
// A MediaMTX file: its API listener serves go2rtc's /api too, its HLS listener MediaMTX's URLs.
writeFileSync(configFile, `logLevel: info
api: true
apiAddress: 127.0.0.1:0
rtspAddress: ${RTSP}
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
hlsAddress: ${HLS}
webrtc: false
rtmp: false
srt: false
paths:
  all_others:
`);
const { api, log, server } = await startCamrelay(bin, ['-c', configFile]);

const TONE = 440;
const combos = {
  aac: ['-c:a', 'aac', '-ar', '44100', '-ac', '1', '-b:a', '64k'],
  pcma: ['-c:a', 'pcm_alaw', '-ar', '8000', '-ac', '1'],
  pcmu: ['-c:a', 'pcm_mulaw', '-ar', '8000', '-ac', '1'],
  pcma16k: ['-c:a', 'pcm_alaw', '-ar', '16000', '-ac', '1'],
};
const publishers = Object.entries(combos).map(([name, audio]) => spawn('ffmpeg', ['-hide_banner', '-v', 'error', '-re',
  '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', `sine=frequency=${TONE}:sample_rate=48000`,
  '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p', ...audio,
  '-t', '600', '-f', 'rtsp', '-rtsp_transport', 'tcp', `rtsp://${RTSP}/${name}`], { stdio: 'ignore' }));
// H.265 + AAC: played where this Chromium's MSE takes H.265; the server's side is checked anyway.
publishers.push(spawn('ffmpeg', ['-hide_banner', '-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
  '-f', 'lavfi', '-i', `sine=frequency=${TONE}:sample_rate=48000`, '-c:v', 'libx265', '-preset', 'ultrafast', '-tune', 'zerolatency',
  '-x265-params', 'keyint=25:log-level=error', '-pix_fmt', 'yuv420p', ...combos.aac, '-t', '600', '-f', 'rtsp', '-rtsp_transport', 'tcp',
  `rtsp://${RTSP}/h265`], { stdio: 'ignore' }));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Runs `cmd args` (at most `ms`), resolves with its stdout and stderr.
function run(cmd, args, ms) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const browser = await launchChromium();

// Runs in the page (same origin as the media): starts `mode` on `url` in an unmuted <video> whose sound
// goes through an AnalyserNode, waits for 50 frames (25 s at most), then listens for 3 s.
async function play(page, mode, url) {
  return page.evaluate(async ({ mode, url, tone }) => {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    let video;
    if (mode.startsWith('ui_')) {
      // The web UI's player (stream.html) made the <video>: wait for its first picture, then unmute it
      // (as its Unmute button does).
      const t = performance.now();
      while (performance.now() - t < 20000) {
        video = document.querySelector('video');
        if (video && video.getVideoPlaybackQuality().totalVideoFrames > 0) break;
        await sleep(50);
      }
      if (!video) return { error: `no <video>: ${document.body.innerText.slice(0, 300)}` };
    } else {
      document.body.innerHTML = '<video autoplay playsinline></video>';
      video = document.querySelector('video');
    }
    video.muted = false;
    const errors = [];
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    const silent = ctx.createGain();
    silent.gain.value = 0;
    ctx.createMediaElementSource(video).connect(analyser);
    analyser.connect(silent).connect(ctx.destination);
    let mime = null;
    let container = mode === 'llhls' || mode === 'ws_hls' || mode.startsWith('hls') ? null : 'fmp4';
    let hls = null;
    if (mode === 'mse') {
      // go2rtc's video-rtc.js: the codecs MSE takes, in its order.
      const candidates = ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'hvc1.1.6.L153.B0', 'mp4a.40.2', 'mp4a.40.5', 'flac', 'opus'];
      const codecs = candidates.filter((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`)).join(',');
      const ms = new MediaSource();
      video.src = URL.createObjectURL(ms);
      await new Promise((r) => ms.addEventListener('sourceopen', r, { once: true }));
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      let sb = null;
      const queue = [];
      const pump = () => { if (sb && !sb.updating && queue.length) sb.appendBuffer(queue.shift()); };
      ws.onopen = () => ws.send(JSON.stringify({ type: 'mse', value: codecs }));
      ws.onmessage = (ev) => {
        if (typeof ev.data === 'string') {
          const msg = JSON.parse(ev.data);
          if (msg.type === 'mse') {
            mime = msg.value;
            sb = ms.addSourceBuffer(msg.value);
            sb.mode = 'segments';
            sb.onupdateend = pump;
            sb.onerror = () => errors.push('SourceBuffer error');
          } else errors.push(msg.value);
        } else { queue.push(ev.data); pump(); }
      };
      window.__ws = ws;
    } else if (mode === 'mp4') {
      video.src = url;
    } else if (mode === 'ws_hls') {
      // go2rtc's player on a browser without MSE (iPhone) asks the WebSocket for `hls` with its codecs
      // and plays the master playlist it answers; here hls.js plays its variant (URIs relative to /api/).
      const master = await new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'hls', value: 'avc1.640029,avc1.64002A,hvc1.1.6.L153.B0,mp4a.40.2,mp4a.40.5,flac' }));
        ws.onmessage = (ev) => { const m = JSON.parse(ev.data); ws.close(); if (m.type === 'hls') resolve(m.value); else reject(new Error(m.value)); };
        ws.onerror = () => reject(new Error('WebSocket error'));
      });
      const variant = master.split('\n').find((l) => l && !l.startsWith('#'));
      mime = (master.match(/CODECS="([^"]*)"/) || [])[1] || null;
      hls = new Hls({ liveSyncDurationCount: 1 });
      hls.on(Hls.Events.ERROR, (_, d) => errors.push(`${d.details}${d.fatal ? ' (fatal)' : ''}`));
      hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
        const f = d.details.fragments[0];
        if (f) container = /\.ts\b/.test(f.relurl || f.url) ? 'ts' : 'fmp4';
      });
      hls.loadSource(`/api/${variant}`);
      hls.attachMedia(video);
    } else if (mode.startsWith('ui_')) {
      mime = `${document.getElementById('mode').textContent}: ${document.getElementById('detail').textContent}`;
    } else {
      hls = new Hls(mode === 'llhls' ? { lowLatencyMode: true } : { liveSyncDurationCount: 1 });
      hls.on(Hls.Events.ERROR, (_, d) => errors.push(`${d.details}${d.fatal ? ' (fatal)' : ''}`));
      hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => { mime = d.levels.map((l) => `${l.videoCodec},${l.audioCodec}`).join(' '); });
      // The segments' container, from their names (`segment.ts` or `segment.m4s`).
      hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
        const f = d.details.fragments[0];
        if (f) container = /\.ts\b/.test(f.relurl || f.url) ? 'ts' : 'fmp4';
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    }
    // Stay near the live edge (progressive MP4 and MSE buffer what comes).
    const chase = setInterval(() => {
      const r = video.buffered;
      if (!hls && !mode.startsWith('ui_') && r.length && r.end(r.length - 1) - video.currentTime > 1.5) video.currentTime = r.end(r.length - 1) - 0.3;
    }, 250);
    const t0 = performance.now();
    while (video.getVideoPlaybackQuality().totalVideoFrames < 50 && performance.now() - t0 < 25000) await sleep(50);
    // play() of an element with nothing to play never settles: give it a second.
    if (video.paused && video.readyState > 0) {
      await Promise.race([video.play().catch((e) => errors.push(`play(): ${e}`)), sleep(1000)]);
    }
    const audioBytes0 = video.webkitAudioDecodedByteCount;
    const frames0 = video.getVideoPlaybackQuality().totalVideoFrames;
    // 3 s of listening: the loudest bin of each spectrum, and the level.
    const bins = new Float32Array(analyser.frequencyBinCount);
    const wave = new Float32Array(analyser.fftSize);
    const peaks = [];
    let rms = 0;
    for (let i = 0; i < 30; i++) {
      await sleep(100);
      analyser.getFloatFrequencyData(bins);
      let best = 0;
      for (let b = 1; b < bins.length; b++) if (bins[b] > bins[best]) best = b;
      if (bins[best] > -90) peaks.push(best * ctx.sampleRate / analyser.fftSize);
      analyser.getFloatTimeDomainData(wave);
      rms = Math.max(rms, Math.sqrt(wave.reduce((s, x) => s + x * x, 0) / wave.length));
    }
    peaks.sort((a, b) => a - b);
    clearInterval(chase);
    const q = video.getVideoPlaybackQuality();
    const out = {
      mime,
      container,
      frames: q.totalVideoFrames,
      framesWhileListening: q.totalVideoFrames - frames0,
      width: video.videoWidth,
      height: video.videoHeight,
      videoBytes: video.webkitVideoDecodedByteCount,
      audioBytes: video.webkitAudioDecodedByteCount,
      audioBytesWhileListening: video.webkitAudioDecodedByteCount - audioBytes0,
      toneHz: peaks.length ? peaks[Math.floor(peaks.length / 2)] : null,
      toneSpectra: peaks.length,
      rms,
      audioContext: ctx.state,
      audioTracks: hls ? hls.audioTracks.length : undefined,
      firstFramesMs: performance.now() - t0 - 3000,
      errors: errors.concat(video.error ? [`video: ${video.error.message}`] : []),
    };
    if (hls) hls.destroy();
    if (window.__ws) window.__ws.close();
    video.removeAttribute('src');
    video.load();
    await ctx.close();
    return out;
  }, { mode, url, tone: TONE });
}

// ffprobe's streams and ffmpeg's decoded audio frames (5 s at most) of an HTTP URL.
async function ffcheck(url) {
  const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,sample_rate,width,height',
    '-of', 'json', url], 30000);
  let streams = [];
  try { streams = JSON.parse(probe.stdout).streams || []; } catch { /* reported below */ }
  const audio = streams.find((s) => s.codec_type === 'audio');
  const video = streams.find((s) => s.codec_type === 'video');
  // The audio decoded: one framecrc line per audio frame (50 wanted).
  const dec = audio ? await run('ffmpeg', ['-v', 'error', '-i', url, '-map', '0:a:0', '-frames:a', '50', '-f', 'framecrc', '-'], 30000) : { stdout: '', stderr: '' };
  const audioFrames = dec.stdout.split('\n').filter((l) => l && !l.startsWith('#')).length;
  return {
    audio: audio ? `${audio.codec_name} ${audio.sample_rate}` : null,
    video: video ? `${video.codec_name} ${video.width}x${video.height}` : null,
    audioFrames,
    error: (probe.stderr + dec.stderr).trim().split('\n').slice(-3).join(' | ') || null,
  };
}

const modes = {
  mse: (s) => ({ origin: `http://${api}/`, url: `ws://${api}/api/ws?src=${s}` }),
  mp4: (s) => ({ origin: `http://${api}/`, url: `/api/stream.mp4?src=${s}&mp4=flac`, ff: `http://${api}/api/stream.mp4?src=${s}&mp4=flac` }),
  hls_fmp4: (s) => ({ origin: `http://${api}/`, script: `http://${api}/vendor/hls.light.min.js`, url: `/api/stream.m3u8?src=${s}&mp4=flac`, ff: `http://${api}/api/stream.m3u8?src=${s}&mp4=flac` }),
  hls_ts: (s) => ({ origin: `http://${api}/`, script: `http://${api}/vendor/hls.light.min.js`, url: `/api/stream.m3u8?src=${s}&video=h264&audio=aac,pcma,pcmu`, ff: `http://${api}/api/stream.m3u8?src=${s}&video=h264&audio=aac,pcma,pcmu` }),
  // The web UI's player page in its MSE and HLS modes.
  ui_mse: (s) => ({ origin: `http://${api}/stream.html?src=${s}&mode=mse`, url: '' }),
  ui_hls: (s) => ({ origin: `http://${api}/stream.html?src=${s}&mode=hls`, url: '' }),
  ws_hls: (s) => ({ origin: `http://${api}/`, script: `http://${api}/vendor/hls.light.min.js`, url: `ws://${api}/api/ws?src=${s}` }),
  // go2rtc's URL with camrelay's `ll`: LL-HLS as MediaMTX's URL (ffmpeg only: hls.js plays the same muxer).
  ll_api: (s) => ({ ff: `http://${api}/api/stream.m3u8?src=${s}&ll` }),
  llhls: (s) => ({ origin: `http://${HLS}/${s}/hls.min.js`, script: `http://${HLS}/${s}/hls.min.js`, url: `/${s}/index.m3u8`, ff: `http://${HLS}/${s}/index.m3u8` }),
};

const result = { results: {}, ffmpeg: {} };
try {
  // Every publisher on the server.
  const t0 = Date.now();
  for (;;) {
    const list = await (await fetch(`http://${api}/v3/paths/list`)).json().catch(() => ({}));
    const ready = (list.items || []).filter((p) => p.ready).map((p) => p.name);
    if ([...Object.keys(combos), 'h265'].every((c) => ready.includes(c))) break;
    if (Date.now() - t0 > 30000) throw new Error(`publishers not ready after 30 s: ${JSON.stringify(ready)}`);
    await sleep(200);
  }
  const probe = await browser.newPage();
  await probe.goto(`http://${api}/`);
  result.support = await probe.evaluate(() => Object.fromEntries(['avc1.640029', 'hvc1.1.6.L153.B0', 'hev1.1.6.L153.B0', 'mp4a.40.2', 'flac', 'opus']
    .map((c) => [c, MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`)])));
  await probe.close();
  for (const [mode, target] of Object.entries(modes)) {
    if (only && !only.includes(mode)) continue;
    // The combinations of a mode play at the same time, one page each.
    const runs = !target('').origin ? [] : Object.keys(combos).map(async (combo) => {
      const t = target(combo);
      const page = await browser.newPage();
      try {
        await page.goto(t.origin);
        if (t.script) await page.addScriptTag({ url: t.script });
        return [combo, await play(page, mode, t.url)];
      } catch (e) {
        return [combo, { error: String(e && e.stack || e) }];
      } finally {
        await page.close();
      }
    });
    if (runs.length) result.results[mode] = Object.fromEntries(await Promise.all(runs));
    // ffmpeg reads the same URLs (one at a time: 2 cores).
    for (const combo of Object.keys(combos)) {
      const t = target(combo);
      if (!t.ff) continue;
      result.ffmpeg[mode] ??= {};
      result.ffmpeg[mode][combo] = await ffcheck(t.ff);
    }
  }
  // H.265 + AAC over MSE: the server's answer to a browser listing hvc1 (its MIME type, bytes sent) and
  // whether this Chromium takes that type; played like the others where it does.
  if (!only || only.includes('h265')) {
    const page = await browser.newPage();
    await page.goto(`http://${api}/`);
    result.h265 = await page.evaluate(async (url) => {
      const ws = new WebSocket(url);
      ws.binaryType = 'arraybuffer';
      let mime = null;
      let bytes = 0;
      ws.onopen = () => ws.send(JSON.stringify({ type: 'mse', value: 'hvc1.1.6.L153.B0,hev1.1.6.L153.B0,mp4a.40.2,flac,opus' }));
      ws.onmessage = (ev) => { if (typeof ev.data === 'string') mime = JSON.parse(ev.data).value; else bytes += ev.data.byteLength; };
      await new Promise((r) => setTimeout(r, 3000));
      ws.close();
      return { mime, bytes, supported: !!mime && MediaSource.isTypeSupported(mime) };
    }, `ws://${api}/api/ws?src=h265`);
    if (result.h265.supported) result.h265.mse = await play(page, 'mse', `ws://${api}/api/ws?src=h265`);
    await page.close();
    result.h265.ffmpeg = await ffcheck(`http://${api}/api/stream.mp4?src=h265`);
  }
} catch (e) {
  result.error = String(e && e.stack || e);
}
result.log = log.filter((l) => /WRN|ERR|hls:|mux/.test(l)).slice(-40);
console.log(JSON.stringify(result));
await browser.close();
for (const p of publishers) p.kill('SIGKILL');
server.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
process.exit(0);
