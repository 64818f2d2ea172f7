// Stream list: polls api/streams, renders one card per stream, adds and deletes streams.
'use strict';

const POLL_MS = 3000;
const THUMB_MS = 10000;
const cards = new Map(); // name -> {root, parts}

const RANK = { online: 4, connecting: 3, retrying: 2, idle: 1 };

/** The stream's state: the best of its sources' states. */
function streamState(info) {
  let best = 'idle';
  for (const p of info.producers || []) if ((RANK[p.state] || 0) > (RANK[best] || 0)) best = p.state;
  return best;
}

function enc(name) { return encodeURIComponent(name); }

function thumbUrl(name) {
  return `api/frame.jpeg?src=${enc(name)}&width=320&cache=5s&t=${Math.floor(Date.now() / THUMB_MS)}`;
}

function makeCard(name) {
  const img = el('img', { alt: `${name} snapshot`, loading: 'lazy' });
  const nothumb = el('span', { class: 'nothumb' }, 'no picture yet');
  img.addEventListener('load', () => { nothumb.hidden = true; img.hidden = false; });
  img.addEventListener('error', () => { nothumb.hidden = false; img.hidden = true; });
  img.src = thumbUrl(name);
  const badge = el('span', { class: 'badge' });
  const readers = el('span', { class: 'readers' });
  const sources = el('ul', { class: 'sources' });
  const lastError = el('div', { class: 'last-error' });
  const del = el('button', { class: 'danger', type: 'button', title: `Delete ${name}` }, 'Delete');
  del.addEventListener('click', () => deleteStream(name, del));
  const root = el('article', { class: 'card', 'data-name': name },
    el('a', { class: 'thumb', href: `stream.html?src=${enc(name)}`, title: `Play ${name}` }, img, nothumb),
    el('div', { class: 'body' },
      el('div', { class: 'title' },
        el('a', { class: 'name', href: `stream.html?src=${enc(name)}` }, name),
        badge),
      sources,
      lastError,
      el('div', { class: 'actions' },
        el('a', { class: 'button', href: `stream.html?src=${enc(name)}` }, '▶ Play'),
        el('a', { class: 'button', href: `links.html?src=${enc(name)}` }, 'Links'),
        el('span', { class: 'spacer' }),
        readers,
        del)));
  return { root, img, badge, readers, sources, lastError, thumbAt: Date.now() };
}

function updateCard(card, name, info) {
  const state = streamState(info);
  card.badge.className = `badge ${state}`;
  card.badge.textContent = state;
  card.root.dataset.state = state;
  const n = (info.consumers || []).length;
  card.readers.textContent = `${n} ${n === 1 ? 'reader' : 'readers'}`;
  const producers = info.producers || [];
  card.sources.replaceChildren(...producers.map((p) =>
    el('li', {}, el('code', { title: p.url }, p.url))));
  if (!producers.length) card.sources.replaceChildren(el('li', { class: 'muted small' }, 'no sources'));
  const errors = producers.filter((p) => p.last_error && p.state !== 'online').map((p) => p.last_error);
  card.lastError.textContent = errors.join('\n');
  card.lastError.hidden = !errors.length;
  if (Date.now() - card.thumbAt >= THUMB_MS) {
    card.thumbAt = Date.now();
    card.img.src = thumbUrl(name);
  }
}

function render(streams) {
  const grid = document.getElementById('streams');
  const names = Object.keys(streams).sort((a, b) => a.localeCompare(b));
  for (const [name, card] of cards) {
    if (!(name in streams)) { card.root.remove(); cards.delete(name); }
  }
  names.forEach((name) => {
    let card = cards.get(name);
    if (!card) { card = makeCard(name); cards.set(name, card); }
    updateCard(card, name, streams[name]);
    grid.append(card.root); // keeps the sorted order; moving an element keeps its image
  });
  const empty = grid.querySelector('.empty');
  if (!names.length && !empty) grid.append(el('div', { class: 'empty panel' }, 'No streams yet. Add one above.'));
  if (names.length && empty) empty.remove();
}

let pollTimer = null;
async function refresh() {
  clearTimeout(pollTimer);
  const err = document.getElementById('list-error');
  try {
    const res = await api('api/streams', { cache: 'no-store' });
    render(await res.json());
    err.textContent = '';
    document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    err.textContent = `Cannot load the streams: ${e.message}`;
  }
  pollTimer = setTimeout(refresh, POLL_MS);
}

async function deleteStream(name, button) {
  if (!confirm(`Delete stream "${name}"? Its viewers are disconnected and it is removed from the config file.`)) return;
  button.disabled = true;
  const err = document.getElementById('list-error');
  try {
    await api(`api/streams?src=${enc(name)}`, { method: 'DELETE' });
    err.textContent = '';
  } catch (e) {
    err.textContent = `Cannot delete ${name}: ${e.message}`;
    button.disabled = false;
  }
  refresh();
}

document.getElementById('add').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = document.getElementById('add-name').value.trim();
  const src = document.getElementById('add-src').value.trim();
  const err = document.getElementById('add-error');
  const submit = document.getElementById('add-submit');
  submit.disabled = true;
  try {
    await api(`api/streams?name=${enc(name)}&src=${enc(src)}`, { method: 'PUT' });
    err.textContent = '';
    ev.target.reset();
  } catch (e) {
    err.textContent = e.message;
  } finally {
    submit.disabled = false;
  }
  refresh();
});

(async () => {
  try {
    const schemes = await (await api('api/schemes')).json();
    document.getElementById('schemes').textContent = `Source schemes: ${schemes.join(', ')}`;
  } catch (_) { /* optional */ }
})();
refresh();
