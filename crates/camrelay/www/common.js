// Helpers shared by the camrelay pages. Every URL is relative so the UI works under api.base_path.
'use strict';

/** A query parameter of this page's URL. */
function param(name) {
  return new URLSearchParams(location.search).get(name);
}

/** The server's error text for a failed response: `{"error": ...}` or the plain body. */
async function errorText(res) {
  const body = await res.text();
  try {
    const j = JSON.parse(body);
    if (j && j.error) return j.error;
  } catch (_) { /* not JSON */ }
  return body.trim() || `${res.status} ${res.statusText}`;
}

/** fetch() that throws an Error carrying the server's message when the status is not 2xx. */
async function api(url, options) {
  const res = await fetch(url, options);
  if (!res.ok) throw new Error(await errorText(res));
  return res;
}

/** An element: el('a', {href: 'x', class: 'y'}, 'text', child). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** Copies text to the clipboard, also on plain http (no Clipboard API outside secure contexts). */
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return; } catch (_) { /* fall through */ }
  }
  const ta = el('textarea', { style: 'position:fixed;opacity:0' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  document.execCommand('copy');
  ta.remove();
}

/** An absolute URL for a path relative to this page, with the given scheme (http→ws). */
function absolute(path, ws) {
  const u = new URL(path, location.href);
  if (ws) u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}
