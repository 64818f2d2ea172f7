// CSRF (go2rtc's CVE-2024-29192): a page from another origin, in headless Chromium, tries to change
// camrelay's config and create `exec:` streams with cross-site requests: a `text/plain` POST to
// /api/config and a PUT/POST to /api/streams (fetch no-cors, an auto-submitted form, and a CORS PUT
// with a JSON body that needs a preflight). Prints one JSON line: what the server then holds.
// Usage (inside `unshare --net`, see ../browser_csrf.rs): node csrf.mjs CAMRELAY_BIN MARKER_FILE
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const [bin, marker] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'camrelay-csrf-'));
const file = join(dir, 'camrelay.yaml');
writeFileSync(file, '# camrelay CSRF test\nstreams:\n  demo: demo:clip\n');
const base = '{"api":{"listen":"127.0.0.1:0"},"rtsp":{"listen":"127.0.0.1:0","rtp_listen":"","rtcp_listen":""}}';
const { api, log, server } = await startCamrelay(bin, ['-c', base, '-c', file], { cwd: dir });
const target = `http://${api}`;
const evil = `exec:touch ${marker}`;

// The attacker's site: another origin (127.0.0.2), its page fires the requests on load.
const page = `<!doctype html><html><body>
<form id="f" method="POST" action="${target}/api/streams?name=evil_form&src=${encodeURIComponent(evil)}" target="sink">
<input name="x" value="1"></form><iframe name="sink"></iframe>
<script>
(async () => {
  const results = {};
  const attempt = async (name, url, init) => {
    try { const r = await fetch(url, init); results[name] = r.type === 'opaque' ? 'opaque' : r.status; }
    catch (e) { results[name] = 'blocked: ' + e.message; }
  };
  await attempt('config_text_plain', '${target}/api/config', { method: 'POST', mode: 'no-cors',
    headers: { 'Content-Type': 'text/plain' }, body: 'streams:\\n  evil_config: "${evil}"\\n' });
  await attempt('streams_put', '${target}/api/streams?name=evil_put&src=${encodeURIComponent(evil)}', { method: 'PUT', mode: 'no-cors' });
  await attempt('streams_post', '${target}/api/streams?name=evil_post&src=${encodeURIComponent(evil)}', { method: 'POST', mode: 'no-cors',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
  await attempt('config_json_cors', '${target}/api/config', { method: 'PUT', mode: 'cors',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ streams: { evil_json: '${evil}' } }) });
  document.getElementById('f').submit();
  await new Promise((r) => setTimeout(r, 1000));
  window.done = results;
})();
</script></body></html>`;
const attacker = createServer((req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(page); });
await new Promise((r) => attacker.listen(0, '127.0.0.2', r));
const attackerUrl = `http://127.0.0.2:${attacker.address().port}/`;

const out = { error: null };
const browser = await launchChromium();
try {
  const tab = await browser.newPage();
  await tab.goto(attackerUrl);
  await tab.waitForFunction(() => window.done, null, { timeout: 30000 });
  out.browser = await tab.evaluate(() => window.done);
  const streams = await (await fetch(`${target}/api/streams`)).json();
  out.streams = Object.keys(streams);
  out.config = await (await fetch(`${target}/api/config`)).text();
  out.file = readFileSync(file, 'utf8');
  out.marker = existsSync(marker);
  out.refusals = log.filter((l) => l.includes('cross-site request refused')).length;
  // The same origin may still do it (the UI's own requests): a control that the API works.
  const same = await fetch(`${target}/api/streams?name=same_origin&src=demo:clip`, { method: 'PUT', headers: { Origin: target } });
  out.same_origin_status = same.status;
} catch (e) {
  out.error = String(e);
}
await browser.close();
attacker.close();
server.kill();
console.log(JSON.stringify(out));
