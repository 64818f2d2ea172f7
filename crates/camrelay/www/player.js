// Player: one page for every mode (WebRTC, MSE over api/ws, HLS, MJPEG). In automatic mode it first asks
// the server which codecs the stream has (`api/streams?src=&probe=1`) and the browser which of them each
// mode can play (WebRTC receiver capabilities, `MediaSource.isTypeSupported`, `canPlayType`), skips the
// modes that cannot play the stream's video (saying why: "H.265 not supported by this browser") and
// tries the others, best first: the modes playing everything asked for (video, sound, microphone) before
// those playing less, then by delay (WebRTC, MSE, HLS, MJPEG). A mode that still fails or shows no
// picture in time hands over to the next. go2rtc's URL parameters: `mode=` one mode or a list
// (`mode=webrtc,mse`), `media=` what to play and whether to send the microphone (`video+audio+microphone`).
'use strict';

const src = param('src') || '';
const MODES = ['webrtc', 'mse', 'hls', 'mjpeg'];
const LABELS = { webrtc: 'WebRTC', mse: 'MSE', hls: 'HLS', mjpeg: 'MJPEG' };
const FIRST_PICTURE_MS = { webrtc: 8000, mse: 10000, hls: 20000, mjpeg: 15000 };
const MEDIA_KINDS = ['video', 'audio', 'microphone'];
const q = `src=${encodeURIComponent(src)}`;

/** `mode=`: null (auto, all modes), or the modes to try in their order; `unknown` the names that are not
 * modes of this page (go2rtc's `webrtc/tcp` is WebRTC: the server offers TCP candidates anyway). */
function parseModes(value) {
  if (!value) return { list: null, unknown: [] };
  const names = String(value).toLowerCase().split(/[\s,+]+/).filter(Boolean).map((m) => (m === 'webrtc/tcp' ? 'webrtc' : m));
  return { list: names.filter((m, i) => MODES.includes(m) && names.indexOf(m) === i), unknown: names.filter((m) => !MODES.includes(m)) };
}
const parsedModes = parseModes(param('mode'));
/** One mode named alone: forced (its reason shows when it cannot play). */
const forced = parsedModes.list && parsedModes.list.length === 1 ? parsedModes.list[0] : null;
const modeParam = parsedModes.list && parsedModes.list.length ? parsedModes.list.join(',') : null;

const box = document.getElementById('player');
const overlay = document.getElementById('overlay');
const errorBox = document.getElementById('error');
const micButton = document.getElementById('mic');
const micNote = document.getElementById('mic-note');
const statsBox = document.getElementById('stats');
const controls = document.getElementById('controls');
const muteButton = document.getElementById('mute');
const statsButton = document.getElementById('stats-toggle');
const fullscreenButton = document.getElementById('fullscreen');
/** What sits over the picture: kept when the picture element is replaced. */
const chrome = () => [overlay, statsBox, micButton, controls];
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
  const pills = [el('a', { href: pageUrl(null), class: modeParam ? '' : 'active' }, 'Auto')];
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
  // Muted at first: browsers autoplay only muted media; the Unmute button turns the sound on.
  const v = el('video', { muted: true, autoplay: true, playsinline: true });
  v.muted = true;
  v.addEventListener('volumechange', updateMute);
  box.replaceChildren(v, ...chrome());
  updateMute();
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
        history.replaceState(null, '', pageUrl(modeParam));
        renderModes();
        await run();
      }
    }
    history.replaceState(null, '', pageUrl(modeParam));
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
  failed.info = { pc };
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
        failed.info = { mime: msg.value };
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
  // `mp4=flac`: a G.711/LPCM camera's audio as FLAC, where this browser plays it (else AAC only).
  const url = `api/stream.m3u8?${q}&${browserDecodes().hls.audio.has('PCMA') ? 'mp4=flac' : 'mp4'}`;
  const Hls = (window.MediaSource || window.ManagedMediaSource) ? await loadHlsJs() : null;
  alive(failed);
  if (Hls && Hls.isSupported()) {
    // maxLiveSyncPlaybackRate: after a stall, play up to 1.5x until back at the live edge (hls.js
    // otherwise stays as far behind as the stall left it).
    const hls = new Hls({ liveSyncDurationCount: 2, maxBufferLength: 10, backBufferLength: 10, maxLiveSyncPlaybackRate: 1.5 });
    failed.cleanup = () => hls.destroy();
    failed.info = { hls };
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
  box.replaceChildren(img, ...chrome());
  updateMute();
  failed.cleanup = () => { img.src = ''; };
  img.src = `api/stream.mjpeg?${q}`;
  show('mjpeg', 'api/stream.mjpeg');
  return img;
}

// --- What plays where: the stream's codecs (the server's probe) against what each mode carries (the
// server) and decodes (this browser). ---

/** Display names of the codec names the server uses (SDP names). */
const CODEC_NAMES = {
  H264: 'H.264', H265: 'H.265', AV1: 'AV1', VP8: 'VP8', VP9: 'VP9', JPEG: 'JPEG', MJPEG: 'JPEG',
  AAC: 'AAC', OPUS: 'Opus', PCMA: 'PCMA (G.711 A-law)', PCMU: 'PCMU (G.711 µ-law)', L16: 'LPCM', MPA: 'MP3', FLAC: 'FLAC',
};
const codecName = (c) => CODEC_NAMES[c] || c;

/** What the server sends in each mode: video and audio codecs (`null`: any, converted by the server). */
const SERVER_CARRIES = {
  // servers/webrtc: H.264/H.265/AV1/VP9 as they come; Opus and 8 kHz G.711 as they come, AAC, other G.711 and
  // LPCM transcoded to Opus by the server (`webrtc.audio_transcode`, on by default: with it off such a
  // stream plays silent in WebRTC, as the stats overlay then shows).
  webrtc: { video: ['H264', 'H265', 'AV1', 'VP9'], audio: ['OPUS', 'PCMA', 'PCMU', 'AAC', 'L16'] },
  // api/ws `mse`: fMP4; G.711 and LPCM as FLAC.
  mse: { video: ['H264', 'H265'], audio: ['AAC', 'OPUS', 'PCMA', 'PCMU', 'L16'] },
  // api/stream.m3u8?mp4=flac: fMP4 with H.264/H.265 and AAC; G.711 and LPCM as FLAC.
  hls: { video: ['H264', 'H265'], audio: ['AAC', 'PCMA', 'PCMU', 'L16'] },
  // api/stream.mjpeg: JPEG as it comes, any other video transcoded by ffmpeg; no sound.
  mjpeg: { video: null, audio: [] },
};

/** Codecs a mode sends converted: what the browser then has to decode instead (any one of them). */
const SERVER_CONVERTS = {
  webrtc: { AAC: ['OPUS', 'PCMA', 'PCMU'], L16: ['OPUS', 'PCMA', 'PCMU'] },
};

/** One codec string per codec for `isTypeSupported`/`canPlayType` (the server's actual profile may differ). */
const MSE_PROBES = {
  H264: ['avc1.640029', 'avc1.64002A', 'avc1.640033', 'avc1.42E01E'],
  H265: ['hvc1.1.6.L153.B0', 'hev1.1.6.L153.B0', 'hvc1.1.6.L93.B0'],
  AAC: ['mp4a.40.2', 'mp4a.40.5'],
  OPUS: ['opus'],
  FLAC: ['flac'],
};

/** What this browser decodes in each mode, as codec name sets; computed once. */
function browserDecodes() {
  const out = {};
  // WebRTC: the receiver's capabilities (Chromium lists H265 only where it can decode it, Chrome 136+
  // with a hardware decoder; Safari 18+).
  const rtc = { video: new Set(), audio: new Set(), why: '' };
  if (!window.RTCPeerConnection) rtc.why = 'this browser has no WebRTC';
  else if (window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities) {
    for (const kind of ['video', 'audio']) {
      const caps = RTCRtpReceiver.getCapabilities(kind);
      for (const c of (caps && caps.codecs) || []) rtc[kind].add(c.mimeType.split('/')[1].toUpperCase());
    }
  } else {
    // No capability API (old browsers): what every WebRTC browser decodes.
    ['H264'].forEach((c) => rtc.video.add(c));
    ['OPUS', 'PCMA', 'PCMU'].forEach((c) => rtc.audio.add(c));
  }
  out.webrtc = rtc;
  // MSE: what the SourceBuffer takes (fMP4); G.711/LPCM arrive as FLAC.
  const MS = window.ManagedMediaSource || window.MediaSource;
  const mse = { video: new Set(), audio: new Set(), codecs: [], why: MS ? '' : 'this browser has no Media Source Extensions' };
  if (MS) {
    for (const [name, list] of Object.entries(MSE_PROBES)) {
      const ok = list.filter((c) => MS.isTypeSupported(`video/mp4; codecs="${c}"`));
      mse.codecs.push(...ok);
      if (!ok.length) continue;
      if (name === 'H264' || name === 'H265') mse.video.add(name);
      else if (name === 'FLAC') ['PCMA', 'PCMU', 'L16'].forEach((c) => mse.audio.add(c));
      else mse.audio.add(name);
    }
  }
  out.mse = mse;
  // HLS: hls.js on MSE, else the browser's own HLS (Safari, iOS) with what its <video> plays.
  const hls = { video: new Set(), audio: new Set(), why: '' };
  if (MS) {
    mse.video.forEach((c) => hls.video.add(c));
    ['AAC', 'PCMA', 'PCMU', 'L16'].forEach((c) => { if (mse.audio.has(c)) hls.audio.add(c); });
  } else {
    const v = document.createElement('video');
    if (!v.canPlayType('application/vnd.apple.mpegurl')) hls.why = 'this browser plays no HLS';
    for (const [name, list] of Object.entries({ H264: MSE_PROBES.H264, H265: MSE_PROBES.H265, AAC: MSE_PROBES.AAC })) {
      if (list.some((c) => v.canPlayType(`video/mp4; codecs="${c}"`))) (name === 'AAC' ? hls.audio : hls.video).add(name);
    }
    if (v.canPlayType('audio/mp4; codecs="flac"')) ['PCMA', 'PCMU', 'L16'].forEach((c) => hls.audio.add(c));
  }
  out.hls = hls;
  // MJPEG: an <img> decodes JPEG everywhere.
  out.mjpeg = { video: null, audio: new Set(), why: '' };
  return out;
}

/** The stream's codecs from `api/streams?src=&probe=1` (null when the server does not say). */
async function probeStream() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 12000);
  try {
    const res = await fetch(`api/streams?${q}&probe=1`, { cache: 'no-store', signal: ctl.signal });
    if (!res.ok) return null;
    const info = await res.json();
    const out = { video: [], audio: [], backchannel: [], errors: [] };
    for (const p of (info && info.producers) || []) {
      if (p.last_error && !p.medias) out.errors.push(p.last_error);
      for (const m of p.medias || []) {
        // go2rtc's form: "video, recvonly, H264[, H265...]"; a source's sendonly audio is its backchannel.
        const [kind, direction, ...codecs] = String(m).split(',').map((x) => x.trim());
        const list = kind === 'audio' && direction === 'sendonly' ? out.backchannel : out[kind];
        if (!list) continue;
        for (const c of codecs) if (c && !list.includes(c.toUpperCase())) list.push(c.toUpperCase());
      }
    }
    return out.video.length || out.audio.length ? out : null;
  } catch (_) {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `mode` can play what is asked of `stream` here: {ok, reason, video, audio, notes, score}. */
function planMode(mode, stream, decodes) {
  const plan = { mode, ok: true, reason: '', video: null, audio: null, notes: [], score: 0 };
  const browser = decodes[mode];
  if (browser.why) return { ...plan, ok: false, reason: browser.why };
  const server = SERVER_CARRIES[mode];
  /** The first of the stream's codecs of a kind that this mode carries and this browser decodes. */
  const pick = (kind) => {
    const have = stream[kind];
    const carried = have.filter((c) => server[kind] === null || server[kind].includes(c));
    const converts = SERVER_CONVERTS[mode] || {};
    const played = carried.filter((c) => browser[kind] === null || browser[kind].has(c) || (converts[c] || []).some((t) => browser[kind].has(t)));
    if (played.length) return { codec: played[0] };
    const list = have.map(codecName).join(', ');
    if (!carried.length) return { why: `${list} is not sent over ${LABELS[mode]}` };
    return { why: `${carried.map(codecName).join(', ')} not supported by this browser` };
  };
  const wantVideo = wants('video') && stream.video.length > 0;
  const wantAudio = wants('audio') && stream.audio.length > 0;
  if (wantVideo) {
    const v = pick('video');
    if (!v.codec) return { ...plan, ok: false, reason: v.why };
    plan.video = v.codec;
    plan.score += 4;
  }
  if (wantAudio) {
    const a = pick('audio');
    if (a.codec) {
      plan.audio = a.codec;
      plan.score += 2;
    } else if (mode === 'mjpeg') {
      plan.notes.push('no sound in MJPEG');
    } else {
      plan.notes.push(`no sound: ${a.why}`);
    }
  }
  // Nothing to play: only a WebRTC session that sends the microphone (media=microphone) is still of use.
  if (!plan.video && !plan.audio && !(mode === 'webrtc' && wants('microphone'))) {
    let reason = plan.notes[0] || 'nothing to play';
    if (!wantVideo && !wantAudio) reason = wants('video') && !stream.video.length ? 'the stream has no video' : 'the stream has nothing that media= asks for';
    if (wants('microphone') && !wantVideo && !wantAudio) reason = 'only WebRTC sends the microphone';
    return { ...plan, ok: false, reason };
  }
  // The microphone goes only over WebRTC: asked for, it puts WebRTC first.
  if (wants('microphone') && mode === 'webrtc') plan.score += 8;
  return plan;
}

/** The modes to try, best first, and the reasons for those left out. */
function planModes(stream, decodes) {
  const allowed = parsedModes.list && parsedModes.list.length ? parsedModes.list : MODES;
  if (!stream) return { order: allowed.map((mode) => ({ mode, notes: [] })), skipped: [] };
  const plans = allowed.map((m) => planMode(m, stream, decodes));
  const skipped = plans.filter((p) => !p.ok);
  const usable = plans.filter((p) => p.ok);
  // A list given in mode= keeps its order; auto ranks by what plays, then by delay (MODES order).
  if (!parsedModes.list) usable.sort((a, b) => b.score - a.score || MODES.indexOf(a.mode) - MODES.indexOf(b.mode));
  return { order: usable, skipped };
}

// --- The controls over the picture: mute, stats, fullscreen. ---

/** The video element playing now, if any. */
const currentVideo = () => box.querySelector('video');

function updateMute() {
  const v = currentVideo();
  muteButton.hidden = !v;
  if (!v) return;
  const muted = v.muted;
  muteButton.setAttribute('aria-pressed', String(muted));
  muteButton.textContent = muted ? 'Unmute' : 'Mute';
  muteButton.title = muted ? 'Turn the sound on' : 'Turn the sound off';
  box.dataset.muted = String(muted);
}

function toggleMute() {
  const v = currentVideo();
  if (!v) return;
  v.muted = !v.muted;
  if (!v.muted) v.play().catch(() => {});
  updateMute();
}

function toggleFullscreen() {
  const doc = document;
  if (doc.fullscreenElement || doc.webkitFullscreenElement) {
    (doc.exitFullscreen || doc.webkitExitFullscreen).call(doc);
    return;
  }
  if (box.requestFullscreen) box.requestFullscreen().catch((e) => { errorBox.textContent = `Fullscreen: ${e.message}`; });
  else if (box.webkitRequestFullscreen) box.webkitRequestFullscreen();
  else {
    // iOS Safari: only the video element itself goes fullscreen.
    const v = currentVideo();
    if (v && v.webkitEnterFullscreen) v.webkitEnterFullscreen();
  }
}

function updateFullscreen() {
  const on = !!(document.fullscreenElement || document.webkitFullscreenElement);
  fullscreenButton.setAttribute('aria-pressed', String(on));
  fullscreenButton.textContent = on ? 'Exit fullscreen' : 'Fullscreen';
  box.dataset.fullscreen = String(on);
}

function toggleStats() {
  statsBox.hidden = !statsBox.hidden;
  statsButton.setAttribute('aria-pressed', String(!statsBox.hidden));
}

/** RFC 6381 codec strings (`avc1.640029,mp4a.40.2`) as server codec names. */
function namesOfCodecStrings(list) {
  const name = (c) => (/^avc[13]/.test(c) ? 'H264' : /^(hvc1|hev1)/.test(c) ? 'H265' : /^mp4a/.test(c) ? 'AAC'
    : c === 'opus' ? 'OPUS' : /^flac$/i.test(c) ? 'FLAC' : c);
  return String(list || '').split(',').map((c) => c.trim()).filter(Boolean).map((c) => ({ name: name(c), detail: c }));
}

const playing = { mode: null, info: {}, frames: null, at: 0 };

/** The playing session's mode, codecs, picture size and delay, as the stats overlay shows them. */
async function collectStats() {
  const s = { mode: playing.mode, video: '', audio: '', codecDetail: '', width: 0, height: 0, fps: null, delayMs: null, delayWhat: '' };
  const info = playing.info || {};
  const v = currentVideo();
  const img = box.querySelector('img');
  if (v) { s.width = v.videoWidth; s.height = v.videoHeight; }
  if (img) {
    s.width = img.naturalWidth;
    s.height = img.naturalHeight;
    s.video = 'JPEG';
    const from = playing.plan && playing.plan.video;
    if (from && from !== 'JPEG' && from !== 'MJPEG') s.codecDetail = `transcoded from ${codecName(from)} by the server`;
  }
  if (v && v.getVideoPlaybackQuality) {
    const frames = v.getVideoPlaybackQuality().totalVideoFrames;
    const now = performance.now();
    if (playing.frames !== null && now > playing.at) s.fps = Math.round(((frames - playing.frames) * 1000) / (now - playing.at));
    playing.frames = frames;
    playing.at = now;
  }
  const buffered = () => {
    if (!v || !v.buffered.length) return null;
    return Math.max(0, v.buffered.end(v.buffered.length - 1) - v.currentTime) * 1000;
  };
  if (playing.mode === 'webrtc' && info.pc) {
    const reports = await info.pc.getStats();
    const codecs = {};
    let rtt = null;
    let jitter = null;
    reports.forEach((r) => {
      if (r.type === 'codec') codecs[r.id] = r;
      if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded' && r.currentRoundTripTime !== undefined) rtt = r.currentRoundTripTime * 1000;
    });
    reports.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      const c = codecs[r.codecId];
      const name = c ? c.mimeType.split('/')[1].toUpperCase() : '';
      if (r.kind === 'video') {
        s.video = name;
        if (r.frameWidth) { s.width = r.frameWidth; s.height = r.frameHeight; }
        if (r.jitterBufferEmittedCount) jitter = (r.jitterBufferDelay / r.jitterBufferEmittedCount) * 1000;
      } else if (r.kind === 'audio') {
        s.audio = name;
      }
    });
    if (jitter !== null) {
      s.delayMs = jitter + (rtt || 0) / 2;
      s.delayWhat = `jitter buffer ${Math.round(jitter)} ms${rtt !== null ? ` + ½ RTT ${Math.round(rtt / 2)} ms` : ''}`;
    }
  } else if (playing.mode === 'mse') {
    const list = namesOfCodecStrings((String(info.mime || '').match(/codecs="([^"]*)"/) || [])[1]);
    const vc = list.find((c) => c.name === 'H264' || c.name === 'H265');
    const ac = list.find((c) => c !== vc);
    s.video = vc ? vc.name : '';
    s.audio = ac ? ac.name : '';
    s.codecDetail = list.map((c) => c.detail).join(',');
    s.delayMs = buffered();
    s.delayWhat = 'buffered ahead';
  } else if (playing.mode === 'hls' && info.hls) {
    const level = info.hls.levels && info.hls.levels[Math.max(0, info.hls.currentLevel)];
    const list = namesOfCodecStrings(level ? [level.videoCodec, level.audioCodec].filter(Boolean).join(',') : '');
    const vc = list.find((c) => c.name === 'H264' || c.name === 'H265');
    const ac = list.find((c) => c !== vc);
    s.video = vc ? vc.name : '';
    s.audio = ac ? ac.name : '';
    s.codecDetail = list.map((c) => c.detail).join(',');
    const latency = info.hls.latency;
    if (Number.isFinite(latency) && latency > 0) { s.delayMs = latency * 1000; s.delayWhat = 'behind the live edge'; } else { s.delayMs = buffered(); s.delayWhat = 'buffered ahead'; }
  } else if (playing.mode === 'hls') {
    s.delayMs = buffered();
    s.delayWhat = 'buffered ahead';
  }
  if (!s.video && playing.plan && playing.plan.video) s.video = playing.plan.video;
  if (!s.audio && playing.plan && playing.plan.audio && playing.mode !== 'mjpeg') s.audio = playing.plan.audio;
  return s;
}

function renderStats(s) {
  const codecs = [s.video, s.audio].filter(Boolean).map(codecName).join(' + ') || '–';
  const lines = [
    `${LABELS[s.mode] || '–'} · ${codecs}${s.codecDetail ? ` (${s.codecDetail})` : ''}`,
    `${s.width && s.height ? `${s.width}×${s.height}` : 'no picture yet'}${s.fps !== null ? ` · ${s.fps} fps` : ''}`,
    s.delayMs === null ? 'delay: not measured in this mode' : `delay ${Math.round(s.delayMs)} ms (${s.delayWhat})`,
  ];
  statsBox.replaceChildren(...lines.map((l) => el('div', {}, l)));
  Object.assign(statsBox.dataset, {
    mode: s.mode || '', video: s.video || '', audio: s.audio || '', width: String(s.width || 0), height: String(s.height || 0),
    delayMs: s.delayMs === null ? '' : String(Math.round(s.delayMs)),
  });
}

let statsTimer = null;
function startStats(gen) {
  clearInterval(statsTimer);
  playing.frames = null;
  const tick = async () => {
    if (gen !== generation) return;
    try { renderStats(await collectStats()); } catch (e) { console.warn('stats:', e); }
  };
  tick();
  statsTimer = setInterval(tick, 1000);
}

const PLAYERS = { webrtc: playWebrtc, mse: playMse, hls: playHls, mjpeg: playMjpeg };

/** Shows why a mode was left out or failed (the list under the player) and as the overlay's text. */
function reasonsText(list) {
  return list.map((r) => `${LABELS[r.mode] || r.mode}: ${r.reason}`).join('\n');
}

/** Plays in the best mode that works (or the forced one); a new call ends the current playback. */
async function run() {
  cleanup();
  cleanup = () => {};
  clearInterval(statsTimer);
  const gen = ++generation;
  overlay.textContent = 'Looking at the stream…';
  box.dataset.state = 'starting';
  // Which codecs the stream has and which of them each mode plays here.
  const stream = await probeStream();
  if (gen !== generation) return;
  const decodes = browserDecodes();
  const { order, skipped } = planModes(stream, decodes);
  window.camrelayPlan = { stream, order: order.map((p) => ({ mode: p.mode, video: p.video, audio: p.audio, notes: p.notes })), skipped: skipped.map((p) => ({ mode: p.mode, reason: p.reason })) };
  const modes = order.map((p) => p.mode);
  // Ask for the microphone before any deadline runs: the permission prompt may take the user a while.
  if (wants('microphone') && modes.includes('webrtc') && !mic.track) {
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
  if (wants('microphone') && !modes.includes('webrtc')) setMic('error', 'The microphone needs WebRTC mode.');
  const failures = skipped.map((p) => ({ mode: p.mode, reason: p.reason }));
  // A list with names this page does not play (go2rtc's `mp4`): played without them, and said so.
  for (const name of parsedModes.unknown) failures.push({ mode: name, reason: `not a mode of this player (use ${MODES.join(', ')})` });
  for (const plan of order) {
    const mode = plan.mode;
    overlay.textContent = `Connecting (${LABELS[mode]})…`;
    box.dataset.state = 'starting';
    // Errors before firstPicture() is waiting are kept and reported by it.
    const failed = { reject: (e) => { failed.early = failed.early || e; }, cleanup: () => {}, dead: false, info: {} };
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
      const info = [];
      if (plan.notes && plan.notes.length) info.push(`${LABELS[mode]}: ${plan.notes.join('; ')}.`);
      // Modes with less delay that auto mode put after this one, and why.
      const passed = order.filter((p) => p !== plan && MODES.indexOf(p.mode) < MODES.indexOf(mode) && p.notes.length && !failures.some((f) => f.mode === p.mode));
      if (passed.length) info.push(`Chosen over ${passed.map((p) => `${LABELS[p.mode]} (${p.notes.join('; ')})`).join(', ')}.`);
      if (failures.length) info.push(`Not used: ${failures.map((r) => `${LABELS[r.mode] || r.mode}: ${r.reason}`).join('; ')}`);
      document.getElementById('info').textContent = info.join(' ');
      box.dataset.skipped = failures.map((r) => r.mode).join(',');
      Object.assign(playing, { mode, info: failed.info, plan });
      startStats(gen);
      if (mode !== 'webrtc' && mic.track) {
        closeMic();
        setMic('error', `The microphone needs WebRTC; ${LABELS[mode]} plays without it.`);
      }
      return;
    } catch (e) {
      failed.dead = true;
      failed.cleanup();
      if (gen !== generation) return;
      failures.push({ mode, reason: e.message });
      show(null);
    }
  }
  closeMic();
  if (mic.state === 'sending' || mic.state === 'waiting') setMic('off');
  box.dataset.state = 'error';
  box.dataset.skipped = failures.map((r) => r.mode).join(',');
  const noVideo = box.querySelector('video, img');
  if (noVideo) noVideo.remove();
  overlay.textContent = failures.length === 1 ? `Cannot play: ${LABELS[failures[0].mode]}: ${failures[0].reason}` : 'Cannot play this stream';
  errorBox.textContent = reasonsText(failures) || (stream && stream.errors.length ? stream.errors.join('\n') : 'Nothing to try.');
  updateMute();
}

function start() {
  document.getElementById('title').textContent = src || 'Player';
  document.title = `${src} · camrelay`;
  document.getElementById('links').href = `links.html?${q}`;
  document.getElementById('recordings').href = `timeline.html?${q}`;
  renderModes();
  micButton.addEventListener('click', toggleMic);
  muteButton.addEventListener('click', toggleMute);
  statsButton.addEventListener('click', toggleStats);
  fullscreenButton.addEventListener('click', toggleFullscreen);
  document.addEventListener('fullscreenchange', updateFullscreen);
  document.addEventListener('webkitfullscreenchange', updateFullscreen);
  updateMic();
  updateMute();
  updateFullscreen();
  if (!src) { overlay.textContent = ''; errorBox.textContent = 'No stream: open this page as stream.html?src=NAME.'; return; }
  if (parsedModes.unknown.length && !parsedModes.list.length) {
    overlay.textContent = '';
    errorBox.textContent = `Unknown mode "${parsedModes.unknown.join(', ')}" (use ${MODES.join(', ')}, one or a list joined with commas)`;
    return;
  }
  if (parsedMedia.unknown.length) {
    errorBox.textContent = `Unknown media "${parsedMedia.unknown.join(', ')}" (use ${MEDIA_KINDS.join(', ')}, joined with +)`;
    return;
  }
  run();
}

window.addEventListener('pagehide', () => { cleanup(); closeMic(); });
start();
