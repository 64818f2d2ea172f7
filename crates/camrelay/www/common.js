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

/**
 * The links of an HTTP `Link` header (RFC 8288), as `[{url, params}]`: `params` holds each link's
 * parameters by lowercase name (the first of a repeated name wins), quoted values unescaped. Several
 * `Link` headers reach fetch() joined by ", "; commas inside `<...>` and quoted strings are kept.
 */
function parseLinkHeader(header) {
  const s = String(header || '');
  const links = [];
  let i = 0;
  const skip = (re) => { while (i < s.length && re.test(s[i])) i++; };
  // After a malformed link: on to the next comma outside a quoted string.
  const toComma = () => {
    let quoted = false;
    for (; i < s.length; i++) {
      if (quoted && s[i] === '\\') i++;
      else if (s[i] === '"') quoted = !quoted;
      else if (s[i] === ',' && !quoted) return;
    }
  };
  while (i < s.length) {
    skip(/[\s,]/);
    if (i >= s.length) break;
    const end = s[i] === '<' ? s.indexOf('>', i) : -1;
    if (end < 0) { toComma(); continue; }
    const link = { url: s.slice(i + 1, end).trim(), params: {} };
    i = end + 1;
    for (;;) {
      skip(/[ \t]/);
      if (s[i] !== ';') break;
      i++;
      skip(/[ \t]/);
      const name = /^[^\s=;,]*/.exec(s.slice(i))[0].toLowerCase();
      i += name.length;
      skip(/[ \t]/);
      let value = '';
      if (s[i] === '=') {
        i++;
        skip(/[ \t]/);
        if (s[i] === '"') {
          for (i++; i < s.length && s[i] !== '"'; i++) value += s[i] === '\\' ? s[++i] || '' : s[i];
          i++;
        } else {
          value = /^[^;,]*/.exec(s.slice(i))[0];
          i += value.length;
          value = value.trim();
        }
      }
      if (name && !(name in link.params)) link.params[name] = value;
    }
    skip(/[ \t]/);
    if (i < s.length && s[i] !== ',') { toComma(); continue; }
    if (link.url) links.push(link);
  }
  return links;
}

/**
 * RTCPeerConnection `iceServers` from a `Link` header (RFC 9725: WHIP/WHEP), e.g.
 * `<stun:stun.example.net>; rel="ice-server"` and
 * `<turn:turn.example.net?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`.
 * Other links are ignored, and so are servers the browser would refuse: a scheme other than
 * stun/stuns/turn/turns, a TURN server without username and credential, a credential type other than password.
 */
function iceServersFromLinks(header) {
  const servers = [];
  for (const { url, params } of parseLinkHeader(header)) {
    if (!(params.rel || '').toLowerCase().split(/\s+/).includes('ice-server')) continue;
    const scheme = url.split(':')[0].toLowerCase();
    if (!['stun', 'stuns', 'turn', 'turns'].includes(scheme)) continue;
    const type = (params['credential-type'] || 'password').toLowerCase();
    const server = { urls: url };
    if ('username' in params && 'credential' in params && type === 'password') {
      server.username = params.username;
      server.credential = params.credential;
    } else if (scheme.startsWith('turn')) {
      continue;
    }
    servers.push(server);
  }
  return servers;
}
