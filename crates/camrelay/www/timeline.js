// The recordings of one stream (timeline.html?src=NAME): the spans the playback server lists, drawn on
// a time axis; a click plays from that time. The page talks to the API listener only
// (api/playback/list and api/playback/get answer as the playback server's /list and /get do, wherever
// that server listens), so it works under api.base_path and whatever port playback has.
'use strict';

const name = param('src') || '';
const CLIP = 600; // seconds per progressive MP4 clip (its table is built before the first byte)
const timeline = document.getElementById('timeline');
const spansBox = document.getElementById('spans');
const cursor = document.getElementById('cursor');
const video = document.getElementById('video');
const overlay = document.getElementById('overlay');
const errorBox = document.getElementById('error');
let spans = []; // [{start: ms, end: ms, iso}]
let view = { from: 0, to: 1 }; // ms
let clip = null; // {start: ms (what was asked), end: ms}

document.title = `${name} · Recordings · camrelay`;
document.getElementById('title').textContent = `Recordings · ${name}`;
document.getElementById('live').href = `stream.html?src=${encodeURIComponent(name)}`;

const q = (obj) => new URLSearchParams(obj).toString();
const iso = (ms) => new Date(ms).toISOString();
const fmtTime = (ms) => new Date(ms).toLocaleString(undefined, { hour12: false });
function fmtDuration(s) {
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

async function load() {
  try {
    const res = await fetch(`api/playback/list?${q({ path: name })}`);
    if (res.status === 404) {
      const text = await errorText(res);
      // No recordings yet is not an error worth shouting about; a server that is off is.
      spans = [];
      errorBox.textContent = text.startsWith('no recordings') ? '' : text;
      overlay.textContent = text.startsWith('no recordings') ? `No recordings of ${name} yet.` : overlay.textContent;
    } else if (!res.ok) {
      throw new Error(await errorText(res));
    } else {
      const list = await res.json();
      spans = list.map((s) => {
        const start = Date.parse(s.start);
        return { start, end: start + s.duration * 1000, iso: s.start, duration: s.duration };
      });
      errorBox.textContent = '';
    }
  } catch (e) {
    errorBox.textContent = `Listing the recordings: ${e.message}`;
  }
  draw();
}

function draw() {
  const sel = document.getElementById('window').value;
  const now = Date.now();
  if (sel === 'all' && spans.length) {
    const first = Math.min(...spans.map((s) => s.start));
    const last = Math.max(...spans.map((s) => s.end));
    const pad = Math.max((last - first) * 0.02, 1000);
    view = { from: first - pad, to: last + pad };
  } else {
    const len = (sel === 'all' ? 86400 : Number(sel)) * 1000;
    const last = Math.max(now, ...spans.map((s) => s.end));
    view = { from: last - len, to: last };
  }
  spansBox.replaceChildren(...spans.filter((s) => s.end > view.from && s.start < view.to).map((s) => {
    const left = Math.max(s.start, view.from);
    const right = Math.min(s.end, view.to);
    const bar = el('div', {
      class: 'span',
      'data-start': s.iso,
      'data-duration': String(s.duration),
      title: `${fmtTime(s.start)} · ${fmtDuration(s.duration)}`,
    });
    bar.style.left = `${pct(left)}%`;
    bar.style.width = `max(2px, ${pct(right) - pct(left)}%)`;
    return bar;
  }));
  // Axis: five labels.
  const axis = document.getElementById('axis');
  axis.replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map((f) => {
    const t = view.from + (view.to - view.from) * f;
    const short = view.to - view.from <= 86400000;
    return el('span', { style: `left:${f * 100}%` },
      short ? new Date(t).toLocaleTimeString(undefined, { hour12: false }) : fmtTime(t));
  }));
  const body = document.querySelector('#list tbody');
  body.replaceChildren(...spans.slice().reverse().map((s) => el('tr', {},
    el('td', {}, el('a', { href: '#', onclick: (e) => { e.preventDefault(); play(s.start); } }, fmtTime(s.start))),
    el('td', {}, fmtDuration(s.duration)),
    el('td', {}, el('a', { href: `api/playback/get?${q({ path: name, start: s.iso, duration: String(Math.min(s.duration, CLIP)), format: 'mp4' })}` }, 'MP4'), ' ',
      el('a', { href: `api/playback/get?${q({ path: name, start: s.iso, duration: String(s.duration), format: 'hls' })}` }, 'HLS')))));
  moveCursor();
}

const pct = (t) => ((t - view.from) / (view.to - view.from)) * 100;

/** Plays from `t` (ms): inside a span from there, in a gap from the next span's start. */
function play(t) {
  const span = spans.find((s) => t >= s.start && t < s.end) || spans.find((s) => s.start > t);
  if (!span) {
    overlay.textContent = 'Nothing was recorded after that time.';
    return;
  }
  const start = Math.max(t, span.start);
  const duration = Math.min((span.end - start) / 1000, CLIP);
  if (duration <= 0.05) return;
  clip = { start, end: start + duration * 1000, span };
  const url = `api/playback/get?${q({ path: name, start: iso(start), duration: duration.toFixed(3), format: 'mp4' })}`;
  overlay.textContent = 'Loading…';
  errorBox.textContent = '';
  video.dataset.start = iso(start);
  video.src = url;
  video.play().catch(() => { /* the error event reports it */ });
  const download = document.getElementById('download');
  download.href = url;
  download.hidden = false;
  const hls = document.getElementById('hls');
  hls.href = `api/playback/get?${q({ path: name, start: span.iso, duration: String(span.duration), format: 'hls' })}`;
  hls.hidden = false;
  moveCursor();
}

function moveCursor() {
  if (!clip) return;
  const t = clip.start + (video.currentTime || 0) * 1000;
  cursor.hidden = !(t >= view.from && t <= view.to);
  cursor.style.left = `${pct(t)}%`;
  document.getElementById('at').textContent = fmtTime(t);
}

timeline.addEventListener('click', (e) => {
  const box = timeline.getBoundingClientRect();
  const f = Math.min(Math.max((e.clientX - box.left) / box.width, 0), 1);
  play(view.from + (view.to - view.from) * f);
});
video.addEventListener('playing', () => { overlay.textContent = ''; });
video.addEventListener('timeupdate', moveCursor);
// A clip ends: on with the rest of its span.
video.addEventListener('ended', () => { if (clip && clip.end < clip.span.end - 50) play(clip.end); });
video.addEventListener('error', async () => {
  overlay.textContent = '';
  // The media element hides the server's message: ask again for it.
  try {
    const res = await fetch(video.src);
    errorBox.textContent = res.ok ? 'The browser cannot play this recording.' : await errorText(res);
  } catch (e) {
    errorBox.textContent = e.message;
  }
});
document.getElementById('window').addEventListener('change', draw);

load();
// Recordings grow: list again every 10 s.
setInterval(load, 10000);
