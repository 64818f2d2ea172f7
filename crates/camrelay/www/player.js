// Player: tries WebRTC (when the server has it), MSE over api/ws, native HLS, then MJPEG, moving on to
// the next mode when one fails or shows no picture in time. `mode=` in the page URL forces one mode.
'use strict';

const src = param('src') || '';
const forced = param('mode');
const MODES = ['webrtc', 'mse', 'hls', 'mjpeg'];
const LABELS = { webrtc: 'WebRTC', mse: 'MSE', hls: 'HLS', mjpeg: 'MJPEG' };
const FIRST_PICTURE_MS = { webrtc: 8000, mse: 10000, hls: 20000, mjpeg: 15000 };
const q = `src=${encodeURIComponent(src)}`;

const box = document.getElementById('player');
const overlay = document.getElementById('overlay');
const errorBox = document.getElementById('error');
let cleanup = () => {};

function show(mode, detail) {
  box.dataset.mode = mode || '';
  document.getElementById('mode').textContent = mode ? LABELS[mode] : '–';
  document.getElementById('detail').textContent = detail || '';
}

/** Throws when this attempt was given up (timed out) while it awaited something. */
function alive(failed) {
  if (failed.dead) throw new Error('given up');
}

function newVideo() {
  const v = el('video', { muted: true, autoplay: true, playsinline: true, controls: true });
  v.muted = true;
  box.replaceChildren(v, overlay);
  return v;
}

/** Resolves when the element shows a picture, rejects on its error or on `failed.reject`. */
function firstPicture(media, failed) {
  return new Promise((resolve, reject) => {
    if (failed.early) { reject(failed.early); return; }
    failed.reject = reject;
    if (media.tagName === 'IMG') {
      media.addEventListener('load', () => resolve(), { once: true });
      media.addEventListener('error', () => reject(new Error('the image stream failed')), { once: true });
    } else {
      media.addEventListener('loadeddata', () => resolve(), { once: true });
      media.addEventListener('error', () => reject(new Error(media.error ? media.error.message || `media error ${media.error.code}` : 'media error')), { once: true });
    }
  });
}

/** Starts one mode and waits for its first picture, all within `ms`. */
async function startMode(mode, failed, ms) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no picture after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([deadline, (async () => {
      const media = await PLAYERS[mode](failed);
      await firstPicture(media, failed);
      return media;
    })()]);
  } finally {
    clearTimeout(timer);
  }
}

// --- WebRTC: offer to api/webrtc (raw SDP in, raw SDP out, as go2rtc). ---
async function playWebrtc(failed) {
  if (!window.RTCPeerConnection) throw new Error('this browser has no WebRTC');
  const pc = new RTCPeerConnection({ iceServers: [] });
  let session = null; // the server's Location for this session, to DELETE it when done
  failed.cleanup = () => {
    pc.close();
    if (session) fetch(session, { method: 'DELETE', keepalive: true }).catch(() => {});
  };
  const video = newVideo();
  const stream = new MediaStream();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (ev) => { stream.addTrack(ev.track); video.srcObject = stream; };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed') failed.reject(new Error('WebRTC connection failed'));
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, 2000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
    });
  });
  alive(failed);
  const res = await fetch(`api/webrtc?${q}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (!res.ok) throw new Error(res.status === 404 || res.status === 405 ? 'the server has no WebRTC' : await errorText(res));
  const location = res.headers.get('Location');
  // Relative to the API root, so it works under api.base_path.
  if (location) session = location.replace(/^\/+/, '').replace(/^.*?api\/webrtc/, 'api/webrtc');
  if (failed.dead) failed.cleanup();
  alive(failed);
  let answer = await res.text();
  try { const j = JSON.parse(answer); if (j && j.sdp) answer = j.sdp; } catch (_) { /* raw SDP */ }
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  // An ICE-lite server only answers checks: without a local candidate nothing can ever connect.
  if (/^a=ice-lite/m.test(answer) && !/^a=candidate/m.test(pc.localDescription.sdp)) {
    throw new Error('this browser found no network address to connect from');
  }
  show('webrtc', 'peer connection');
  return video;
}

// --- MSE: go2rtc's WebSocket API, fragmented MP4 into a SourceBuffer. ---
const CODECS = ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'hvc1.1.6.L153.B0', 'mp4a.40.2', 'mp4a.40.5', 'flac', 'opus'];

async function playMse(failed) {
  const MS = window.ManagedMediaSource || window.MediaSource;
  if (!MS) throw new Error('this browser has no Media Source Extensions');
  const codecs = CODECS.filter((c) => MS.isTypeSupported(`video/mp4; codecs="${c}"`));
  if (!codecs.length) throw new Error('MSE plays none of the codecs');
  const video = newVideo();
  const ms = new MS();
  if (window.ManagedMediaSource && MS === window.ManagedMediaSource) video.disableRemotePlayback = true;
  video.src = URL.createObjectURL(ms);
  await new Promise((resolve) => ms.addEventListener('sourceopen', resolve, { once: true }));
  alive(failed);
  const ws = new WebSocket(absolute(`api/ws?${q}`, true));
  ws.binaryType = 'arraybuffer';
  let sb = null;
  const queue = [];
  let queued = 0;
  const pump = () => {
    if (!sb || sb.updating || !queue.length) return;
    try {
      const b = queue.shift();
      queued -= b.byteLength;
      sb.appendBuffer(b);
    } catch (e) { failed.reject(new Error(`MSE: ${e.message}`)); }
  };
  const keepLive = () => {
    const r = video.buffered;
    if (!r.length) return;
    const end = r.end(r.length - 1);
    // Stay near the live edge; drop what is long played.
    if (end - video.currentTime > 3) video.currentTime = end - 0.5;
    if (!sb.updating && video.currentTime - r.start(0) > 30) sb.remove(r.start(0), video.currentTime - 10);
  };
  failed.cleanup = () => { ws.onclose = null; ws.close(); try { if (ms.readyState === 'open') ms.endOfStream(); } catch (_) { /* closing */ } };
  ws.onopen = () => ws.send(JSON.stringify({ type: 'mse', value: codecs.join(',') }));
  ws.onclose = () => failed.reject(new Error('the WebSocket closed'));
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      const msg = JSON.parse(ev.data);
      if (msg.type === 'mse') {
        show('mse', msg.value);
        try {
          sb = ms.addSourceBuffer(msg.value);
        } catch (e) { failed.reject(new Error(`MSE: ${e.message}`)); return; }
        sb.mode = 'segments';
        sb.addEventListener('updateend', () => { keepLive(); pump(); });
      } else if (msg.type === 'error') {
        failed.reject(new Error(msg.value));
      }
    } else {
      if (queued > 16 * 1024 * 1024) { failed.reject(new Error('MSE: the browser does not keep up')); return; }
      queue.push(ev.data);
      queued += ev.data.byteLength;
      pump();
    }
  };
  return video;
}

// --- HLS: hls.js (vendor/, loaded on demand) where the browser has MSE, else native (iOS Safari).
// hls.js goes first as its authors advise: some native players (Chromium's) start paused and stall.
function loadHlsJs() {
  if (window.Hls) return Promise.resolve(window.Hls);
  return new Promise((resolve, reject) => {
    const script = el('script', { src: 'vendor/hls.light.min.js' });
    script.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error('hls.js did not load')));
    script.onerror = () => reject(new Error('cannot load hls.js'));
    document.head.append(script);
  });
}

async function playHls(failed) {
  const video = newVideo();
  const url = `api/stream.m3u8?${q}&mp4`;
  const Hls = (window.MediaSource || window.ManagedMediaSource) ? await loadHlsJs() : null;
  alive(failed);
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({ liveSyncDurationCount: 2, maxBufferLength: 10, backBufferLength: 10 });
    failed.cleanup = () => hls.destroy();
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal) failed.reject(new Error(`HLS: ${data.details}${data.response && data.response.code ? ` (HTTP ${data.response.code})` : ''}`));
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    show('hls', 'hls.js, api/stream.m3u8 (fMP4)');
    return video;
  }
  if (!video.canPlayType('application/vnd.apple.mpegurl')) throw new Error('this browser plays no HLS');
  failed.cleanup = () => { video.removeAttribute('src'); video.load(); };
  video.src = url;
  show('hls', 'native, api/stream.m3u8 (fMP4)');
  return video;
}

// --- MJPEG: an <img> on a multipart stream; works everywhere. ---
async function playMjpeg(failed) {
  const img = el('img', { alt: `${src} live` });
  box.replaceChildren(img, overlay);
  failed.cleanup = () => { img.src = ''; };
  img.src = `api/stream.mjpeg?${q}`;
  show('mjpeg', 'api/stream.mjpeg');
  return img;
}

const PLAYERS = { webrtc: playWebrtc, mse: playMse, hls: playHls, mjpeg: playMjpeg };

async function start() {
  document.getElementById('title').textContent = src || 'Player';
  document.title = `${src} · camrelay`;
  document.getElementById('links').href = `links.html?${q}`;
  const pills = [el('a', { href: `stream.html?${q}`, class: forced ? '' : 'active' }, 'Auto')];
  for (const m of MODES) pills.push(el('a', { href: `stream.html?${q}&mode=${m}`, class: forced === m ? 'active' : '' }, LABELS[m]));
  document.getElementById('modes').replaceChildren(...pills);
  if (!src) { overlay.textContent = ''; errorBox.textContent = 'No stream: open this page as stream.html?src=NAME.'; return; }
  if (forced && !MODES.includes(forced)) { errorBox.textContent = `Unknown mode "${forced}" (use ${MODES.join(', ')})`; return; }

  const order = forced ? [forced] : MODES;
  const failures = [];
  for (const mode of order) {
    overlay.textContent = `Connecting (${LABELS[mode]})…`;
    box.dataset.state = 'starting';
    // Errors before firstPicture() is waiting are kept and reported by it.
    const failed = { reject: (e) => { failed.early = failed.early || e; }, cleanup: () => {}, dead: false };
    try {
      const media = await startMode(mode, failed, FIRST_PICTURE_MS[mode]);
      cleanup = failed.cleanup;
      overlay.textContent = '';
      box.dataset.state = 'playing';
      if (!box.dataset.mode) show(mode);
      if (media.tagName === 'VIDEO') media.play().catch(() => {});
      // After the first picture a failure only reports (no silent mode change mid-watch).
      failed.reject = (e) => { errorBox.textContent = `${LABELS[mode]}: ${e.message}`; box.dataset.state = 'error'; };
      errorBox.textContent = '';
      document.getElementById('info').textContent = failures.length ? `Tried first: ${failures.join('; ')}` : '';
      return;
    } catch (e) {
      failed.dead = true;
      failed.cleanup();
      failures.push(`${LABELS[mode]}: ${e.message}`);
      show(null);
    }
  }
  box.dataset.state = 'error';
  overlay.textContent = 'Cannot play this stream';
  errorBox.textContent = failures.join('\n');
}

window.addEventListener('pagehide', () => cleanup());
start();
