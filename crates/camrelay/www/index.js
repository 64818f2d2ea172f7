// Stream list: polls api/streams, renders one card per stream, adds, edits and deletes streams.
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
  const edit = el('button', { class: 'edit', type: 'button', title: `Edit the sources of ${name}` }, 'Edit');
  const root = el('article', { class: 'card', 'data-name': name },
    el('a', { class: 'thumb', href: `stream.html?src=${enc(name)}`, title: `Play ${name}` }, img, nothumb),
    el('div', { class: 'body' },
      el('div', { class: 'title' },
        el('a', { class: 'name', href: `stream.html?src=${enc(name)}` }, name),
        el('span', { class: 'state' }, readers, badge)),
      sources,
      lastError,
      el('div', { class: 'actions' },
        el('a', { class: 'button', href: `stream.html?src=${enc(name)}` }, '▶ Play'),
        el('a', { class: 'button', href: `links.html?src=${enc(name)}` }, 'Links'),
        el('a', { class: 'button', href: `timeline.html?src=${enc(name)}`, title: `Recordings of ${name}` }, 'Recordings'),
        edit,
        el('span', { class: 'spacer' }),
        del)));
  const card = { root, img, badge, readers, sources, lastError, edit, form: null, info: null, thumbAt: Date.now() };
  edit.addEventListener('click', () => openEditor(name, card));
  return card;
}

/** Source URLs the stream pulls from (publishers, which have a protocol, are not sources to edit). */
function pulledSources(info) {
  return ((info && info.producers) || []).filter((p) => !p.protocol).map((p) => p.url);
}

/** The card's form for the stream's sources, one URL per line; saved with PUT api/streams, which
 * replaces them at once and writes them to the config file. The server's errors show in the form. */
function openEditor(name, card) {
  if (card.form) { card.form.querySelector('textarea').focus(); return; }
  const urls = pulledSources(card.info);
  const id = `edit-${Math.random().toString(36).slice(2)}`;
  const ta = el('textarea', { id, name: 'sources', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off',
    rows: Math.min(8, Math.max(2, urls.length + 1)), placeholder: 'rtsp://user:pass@192.168.1.10/stream1' });
  ta.value = urls.join('\n');
  const error = el('p', { class: 'error', role: 'alert' });
  const save = el('button', { class: 'primary', type: 'submit' }, 'Save');
  const cancel = el('button', { type: 'button' }, 'Cancel');
  const publishers = ((card.info && card.info.producers) || []).filter((p) => p.protocol).length;
  const form = el('form', { class: 'edit', autocomplete: 'off' },
    el('label', { for: id }, 'Sources, one URL per line'),
    ta,
    error,
    el('div', { class: 'row' }, save, cancel,
      el('span', { class: 'hint muted small' }, `Applies at once; saved to the config.${publishers ? ' Publishers stay connected.' : ''}`)));
  const close = () => {
    form.remove();
    card.form = null;
    card.sources.hidden = false;
    card.edit.disabled = false;
    delete card.root.dataset.editing;
  };
  cancel.addEventListener('click', close);
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') close();
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const lines = ta.value.split('\n').map((l) => l.trim()).filter(Boolean);
    // Lines still showing a hidden password (***) are sent as shown: the server puts back the
    // password of the source they came from, and refuses a *** it cannot match.
    save.disabled = true;
    try {
      await api(`api/streams?${[`name=${enc(name)}`, ...lines.map((l) => `src=${enc(l)}`)].join('&')}`, { method: 'PUT' });
      close();
      card.thumbAt = 0; // the new source's picture
    } catch (e) {
      error.textContent = e.message;
    } finally {
      save.disabled = false;
    }
    refresh();
  });
  card.form = form;
  card.sources.hidden = true;
  card.edit.disabled = true;
  card.root.dataset.editing = '';
  card.sources.after(form);
  ta.focus();
  ta.setSelectionRange(ta.value.length, ta.value.length);
}

function updateCard(card, name, info) {
  card.info = info;
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

/** Streams the server derives from others while they are watched (`cam#mjpeg`: cam's MJPEG
 * transcoder): not the user's, and a thumbnail request would keep their transcoder running. */
const DERIVED = /#mjpeg$/;

function render(all) {
  const grid = document.getElementById('streams');
  const streams = Object.fromEntries(Object.entries(all).filter(([name]) => !DERIVED.test(name)));
  const names = Object.keys(streams).sort((a, b) => a.localeCompare(b));
  for (const [name, card] of cards) {
    if (!(name in streams)) { card.root.remove(); cards.delete(name); }
  }
  let prev = null;
  names.forEach((name) => {
    let card = cards.get(name);
    if (!card) { card = makeCard(name); cards.set(name, card); }
    updateCard(card, name, streams[name]);
    // Keep the sorted order, moving only cards out of place: a moved card would lose the focus of its
    // edit form (a moved element keeps its image).
    const at = prev ? prev.nextElementSibling : grid.firstElementChild;
    if (at !== card.root) grid.insertBefore(card.root, at);
    prev = card.root;
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
