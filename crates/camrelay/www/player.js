// Player: tries WebRTC (when the server has it), MSE over api/ws, native HLS, then MJPEG, moving on to
// the next mode when one fails or shows no picture in time. `mode=` in the page URL forces one mode;
// `media=` picks what to play and whether to send the microphone (go2rtc's `video+audio+microphone`).
'use strict';

const src = param('src') || '';
const forced = param('mode');
const MODES = ['webrtc', 'mse', 'hls', 'mjpeg'];
const LABELS = { webrtc: 'WebRTC', mse: 'MSE', hls: 'HLS', mjpeg: 'MJPEG' };
const FIRST_PICTURE_MS = { webrtc: 8000, mse: 10000, hls: 20000, mjpeg: 15000 };
const MEDIA_KINDS = ['video', 'audio', 'microphone'];
const q = `src=${encodeURIComponent(src)}`;

const box = document.getElementById('player');
const overlay = document.getElementById('overlay');
const errorBox = document.getElementById('error');
const micButton = document.getElementById('mic');
const micNote = document.getElementById('mic-note');
let cleanup = () => {};
let generation = 0; // bumped on every (re)start: callbacks of an older attempt do nothing

/** `media=` as a set of kinds: go2rtc's `video,audio` by default; `+`, `,` and spaces separate. */
function parseMedia(value) {
  const kinds = String(value || 'video,audio').toLowerCase().split(/[\s,+]+/).filter(Boolean);
  return { kinds: new Set(kinds.filter((k) => MEDIA_KINDS.includes(k))), unknown: kinds.filter((k) => !MEDIA_KINDS.includes(k)) };
}
const parsedMedia = parseMedia(param('media'));
const media = parsedMedia.kinds;
const wants = (kind) => media.has(kind);

/** This page's URL for a mode (null: auto) with the current `media=`. */
function pageUrl(mode) {
  const m = [...media].sort((a, b) => MEDIA_KINDS.indexOf(a) - MEDIA_KINDS.indexOf(b)).join('+');
  return `stream.html?${q}${m === 'video+audio' ? '' : `&media=${m}`}${mode ? `&mode=${mode}` : ''}`;
}

function renderModes() {
  const pills = [el('a', { href: pageUrl(null), class: forced ? '' : 'active' }, 'Auto')];
  for (const m of MODES) pills.push(el('a', { href: pageUrl(m), class: forced === m ? 'active' : '' }, LABELS[m]));
  document.getElementById('modes').replaceChildren(...pills);
}

function show(mode, detail) {
  box.dataset.mode = mode || '';
  document.getElementById('mode').textContent = mode ? LABELS[mode] : '–';
  document.getElementById('detail').textContent = detail || '';
  updateMic();
}

/** Throws when this attempt was given up (timed out) while it awaited something. */
function alive(failed) {
  if (failed.dead) throw new Error('given up');
}

function newVideo() {
  const v = el('video', { muted: true, autoplay: true, playsinline: true, controls: true });
  v.muted = true;
  box.replaceChildren(v, overlay, micButton);
  return v;
}

/** Resolves when the element shows a picture, rejects on its error or on `failed.reject`. */
function firstPicture(element, failed) {
  return new Promise((resolve, reject) => {
    if (failed.early) { reject(failed.early); return; }
    failed.reject = reject;
    if (element.tagName === 'IMG') {
      element.addEventListener('load', () => resolve(), { once: true });
      element.addEventListener('error', () => reject(new Error('the image stream failed')), { once: true });
    } else {
      element.addEventListener('loadeddata', () => resolve(), { once: true });
      element.addEventListener('error', () => reject(new Error(element.error ? element.error.message || `media error ${element.error.code}` : 'media error')), { once: true });
    }
  });
}

/** Starts one mode and waits for its first picture (or `failed.ready`), all within `ms`. */
async function startMode(mode, failed, ms) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no picture after ${ms / 1000} s${failed.explain ? failed.explain() : ''}`)), ms);
  });
  try {
    return await Promise.race([deadline, (async () => {
      const element = await PLAYERS[mode](failed);
      await (failed.ready ? failed.ready() : firstPicture(element, failed));
      return element;
    })()]);
  } finally {
    clearTimeout(timer);
  }
}

// --- Microphone (two-way audio, WebRTC only): the browser's microphone goes to the stream's backchannel. ---
const mic = {
  track: null, // the open microphone track
  sender: null, // the audio sender of the current WebRTC session, when its offer sends audio
  state: 'off', // off | waiting | sending | refused | error
};

async function openMic() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error(window.isSecureContext ? 'this browser gives no microphone access'
      : 'browsers allow the microphone only on HTTPS pages (or on localhost)');
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    return stream.getAudioTracks()[0];
  } catch (e) {
    throw new Error(e.name === 'NotAllowedError' ? 'permission denied' : e.name === 'NotFoundError' ? 'no microphone found' : e.message);
  }
}

function closeMic() {
  if (mic.track) mic.track.stop();
  mic.track = null;
}

function setMic(state, note) {
  mic.state = state;
  micNote.textContent = note || '';
  updateMic();
}

/** The toggle shows in WebRTC mode (the only one that can send); its label follows the state. */
function updateMic() {
  const on = mic.state === 'sending' || mic.state === 'waiting';
  micButton.hidden = box.dataset.mode !== 'webrtc' && mic.state !== 'waiting';
  micButton.disabled = mic.state === 'waiting';
  micButton.setAttribute('aria-pressed', String(on));
  micButton.dataset.state = mic.state;
  micButton.title = on ? 'Stop sending the microphone' : 'Talk: send the microphone to the camera';
  micButton.querySelector('span').textContent = on ? 'Mic on' : 'Mic off';
  box.dataset.mic = mic.state;
}

async function toggleMic() {
  micButton.disabled = true;
  try {
    if (mic.track) {
      // Stop sending without a new negotiation: the sender just has no track.
      if (mic.sender) await mic.sender.replaceTrack(null);
      closeMic();
      media.delete('microphone');
      setMic('off');
    } else {
      media.add('microphone');
      setMic('waiting', 'Waiting for the microphone…');
      try {
        mic.track = await openMic();
      } catch (e) {
        media.delete('microphone');
        setMic('error', `Microphone: ${e.message}.`);
        return;
      }
      if (mic.sender) {
        // This session's offer already sends audio: put the new track on it.
        await mic.sender.replaceTrack(mic.track);
        setMic('sending', 'Microphone on: sent to the camera.');
      } else {
        // The session was negotiated without sending: start a new one that does.
        history.replaceState(null, '', pageUrl(forced));
        renderModes();
        await run();
      }
    }
    history.replaceState(null, '', pageUrl(forced));
    renderModes();
  } catch (e) {
    setMic('error', `Microphone: ${e.message}`);
  } finally {
    micButton.disabled = false;
    updateMic();
  }
}

// --- WebRTC: offer to api/webrtc (raw SDP in, raw SDP out, as go2rtc). ---

/** The ICE servers the server hands out (`OPTIONS api/webrtc`, RFC 9725 `Link` headers); none on any
 * failure. There is no default: the page contacts no STUN server unless the server's config names one. */
async function fetchIceServers() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 3000);
  try {
    const res = await fetch(`api/webrtc?${q}`, { method: 'OPTIONS', cache: 'no-store', signal: ctl.signal });
    return res.ok ? iceServersFromLinks(res.headers.get('Link')) : [];
  } catch (_) {
    return [];
  } finally {
    clearTimeout(timer);
  }
}

async function playWebrtc(failed) {
  if (!window.RTCPeerConnection) throw new Error('this browser has no WebRTC');
  const iceServers = await fetchIceServers();
  alive(failed);
  let pc;
  try {
    pc = new RTCPeerConnection({ iceServers });
  } catch (e) {
    console.warn('ICE servers refused, using none:', e);
    pc = new RTCPeerConnection({ iceServers: [] });
  }
  // For debugging (and the browser tests): the live peer connection.
  window.camrelay = { pc };
  let session = null; // the server's Location for this session, to DELETE it when done
  failed.cleanup = () => {
    pc.close();
    mic.sender = null;
    if (session) fetch(session, { method: 'DELETE', keepalive: true }).catch(() => {});
  };
  const video = newVideo();
  const stream = new MediaStream();
  if (wants('video')) pc.addTransceiver('video', { direction: 'recvonly' });
  // With the microphone, the audio transceiver also sends: the server routes it to the backchannel.
  let audio = null;
  if (mic.track) {
    audio = pc.addTransceiver(mic.track, { direction: wants('audio') ? 'sendrecv' : 'sendonly' });
  } else if (wants('audio')) {
    pc.addTransceiver('audio', { direction: 'recvonly' });
  }
  if (!pc.getTransceivers().length) throw new Error('nothing to play: media= names no video, audio or microphone');
  pc.ontrack = (ev) => { stream.addTrack(ev.track); video.srcObject = stream; };
  // Only a real failure gives up (or the mode's deadline with no picture): an offer without candidates
  // still connects, as the server (ICE-lite) learns the browser's address from its checks.
  const noAddress = () => !/^a=candidate/m.test(pc.localDescription ? pc.localDescription.sdp : '');
  const iceFailed = () => {
    const why = noAddress() ? ' (this browser offered no network address: check its WebRTC network settings)' : '';
    failed.reject(new Error(`WebRTC connection failed${why}`));
  };
  // For the deadline's message: how far ICE got.
  failed.explain = () => ` (ICE ${pc.iceConnectionState}${noAddress() ? ', the browser offered no network address' : ''})`;
  pc.oniceconnectionstatechange = () => { if (pc.iceConnectionState === 'failed') iceFailed(); };
  pc.onconnectionstatechange = () => { if (pc.connectionState === 'failed') iceFailed(); };
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
  // A browser with a local address starts its checks at once, whether or not its offer listed it; one
  // that still has not, with nothing in its offer, has no address at all: give up early so that auto
  // mode moves on (a later failure or the deadline covers everything else).
  setTimeout(() => {
    if (pc.iceConnectionState === 'new' && noAddress()) {
      failed.reject(new Error('this browser found no network address to connect from (ICE never started)'));
    }
  }, 3000);
  if (audio) {
    // The answer says whether the stream takes our audio (it has a backchannel in a codec we offered).
    const sends = ['sendrecv', 'sendonly'].includes(audio.currentDirection);
    mic.sender = sends ? audio.sender : null;
    if (sends) setMic('sending', 'Microphone on: sent to the camera.');
    else { closeMic(); setMic('refused', 'Microphone off: this stream has no backchannel (two-way audio) that takes PCMA, PCMU or Opus.'); }
  }
  const n = iceServers.length;
  show('webrtc', `peer connection${n ? ` · ${n} ICE server${n === 1 ? '' : 's'}` : ''}`);
  // Nothing to receive (media=microphone): playing means connected.
  if (!wants('video') && !wants('audio')) failed.ready = () => connected(pc, failed);
  return video;
}

/** Resolves when the peer connection is connected, rejects on `failed.reject`. */
function connected(pc, failed) {
  return new Promise((resolve, reject) => {
    if (failed.early) { reject(failed.early); return; }
    failed.reject = reject;
    const check = () => { if (pc.connectionState === 'connected') resolve(); };
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

// --- MSE: go2rtc's WebSocket API, fragmented MP4 into a SourceBuffer. ---
const VIDEO_CODECS = ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'hvc1.1.6.L153.B0'];
const AUDIO_CODECS = ['mp4a.40.2', 'mp4a.40.5', 'flac', 'opus'];

async function playMse(failed) {
  const MS = window.ManagedMediaSource || window.MediaSource;
  if (!MS) throw new Error('this browser has no Media Source Extensions');
  const wanted = [...(wants('video') ? VIDEO_CODECS : []), ...(wants('audio') ? AUDIO_CODECS : [])];
  const codecs = wanted.filter((c) => MS.isTypeSupported(`video/mp4; codecs="${c}"`));
  if (!codecs.length) throw new Error(wanted.length ? 'MSE plays none of the codecs' : 'media= asks for no video or audio');
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
  if (!wants('video')) throw new Error('MJPEG has only video');
  const img = el('img', { alt: `${src} live` });
  box.replaceChildren(img, overlay, micButton);
  failed.cleanup = () => { img.src = ''; };
  img.src = `api/stream.mjpeg?${q}`;
  show('mjpeg', 'api/stream.mjpeg');
  return img;
}

const PLAYERS = { webrtc: playWebrtc, mse: playMse, hls: playHls, mjpeg: playMjpeg };

/** Plays in the first mode that works (or the forced one); a new call ends the current playback. */
async function run() {
  cleanup();
  cleanup = () => {};
  const gen = ++generation;
  const order = forced ? [forced] : MODES;
  // Ask for the microphone before any deadline runs: the permission prompt may take the user a while.
  if (wants('microphone') && order.includes('webrtc') && !mic.track) {
    overlay.textContent = 'Waiting for the microphone…';
    setMic('waiting', 'Allow the microphone to talk to the camera.');
    try {
      mic.track = await openMic();
      setMic('waiting', 'Connecting the microphone…');
    } catch (e) {
      media.delete('microphone');
      setMic('error', `Microphone: ${e.message}. Playing without it.`);
    }
    if (gen !== generation) return;
  }
  if (wants('microphone') && !order.includes('webrtc')) setMic('error', 'The microphone needs WebRTC mode.');
  const failures = [];
  for (const mode of order) {
    overlay.textContent = `Connecting (${LABELS[mode]})…`;
    box.dataset.state = 'starting';
    // Errors before firstPicture() is waiting are kept and reported by it.
    const failed = { reject: (e) => { failed.early = failed.early || e; }, cleanup: () => {}, dead: false };
    try {
      const element = await startMode(mode, failed, FIRST_PICTURE_MS[mode]);
      if (gen !== generation) { failed.cleanup(); return; }
      cleanup = failed.cleanup;
      overlay.textContent = '';
      box.dataset.state = 'playing';
      if (!box.dataset.mode) show(mode);
      if (element.tagName === 'VIDEO') element.play().catch(() => {});
      // After the first picture a failure only reports (no silent mode change mid-watch).
      failed.reject = (e) => {
        if (gen !== generation) return;
        errorBox.textContent = `${LABELS[mode]}: ${e.message}`;
        box.dataset.state = 'error';
      };
      errorBox.textContent = '';
      document.getElementById('info').textContent = failures.length ? `Tried first: ${failures.join('; ')}` : '';
      if (mode !== 'webrtc' && mic.track) {
        closeMic();
        setMic('error', `The microphone needs WebRTC; ${LABELS[mode]} plays without it.`);
      }
      return;
    } catch (e) {
      failed.dead = true;
      failed.cleanup();
      if (gen !== generation) return;
      failures.push(`${LABELS[mode]}: ${e.message}`);
      show(null);
    }
  }
  closeMic();
  if (mic.state === 'sending' || mic.state === 'waiting') setMic('off');
  box.dataset.state = 'error';
  overlay.textContent = 'Cannot play this stream';
  errorBox.textContent = failures.join('\n');
}

function start() {
  document.getElementById('title').textContent = src || 'Player';
  document.title = `${src} · camrelay`;
  document.getElementById('links').href = `links.html?${q}`;
  document.getElementById('recordings').href = `timeline.html?${q}`;
  renderModes();
  micButton.addEventListener('click', toggleMic);
  updateMic();
  if (!src) { overlay.textContent = ''; errorBox.textContent = 'No stream: open this page as stream.html?src=NAME.'; return; }
  if (forced && !MODES.includes(forced)) { errorBox.textContent = `Unknown mode "${forced}" (use ${MODES.join(', ')})`; return; }
  if (parsedMedia.unknown.length) {
    errorBox.textContent = `Unknown media "${parsedMedia.unknown.join(', ')}" (use ${MEDIA_KINDS.join(', ')}, joined with +)`;
    return;
  }
  run();
}

window.addEventListener('pagehide', () => { cleanup(); closeMic(); });
start();
