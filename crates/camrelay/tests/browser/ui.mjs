// Drives camrelay's web UI in headless Chromium: the stream list, the add form, the player in MSE, auto
// and MJPEG modes, editing a stream's sources, the ICE servers the player hands to WebRTC, deleting, and
// phone width; saves screenshots. Prints one JSON line of findings.
// The RTSP port is fixed: the test runs in its own network namespace.
// Usage (inside `unshare --net`, see ../ui.rs): node ui.mjs CAMRELAY_BIN SCREENSHOT_DIR
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const [bin, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'camrelay-ui-'));
const file = join(dir, 'camrelay.yaml');
writeFileSync(file, '# camrelay UI test\nstreams:\n  demo: demo:clip\n');
const base = '{"api":{"listen":"127.0.0.1:0"},"rtsp":{"listen":"127.0.0.1:8554","rtp_listen":"","rtcp_listen":""}}';
const { api, server } = await startCamrelay(bin, ['-c', base, '-c', file], { cwd: dir });
const root = `http://${api}/`;

const browser = await launchChromium();

// Waits until the player shows a picture, then measures how many frames decode over 1.5 s.
async function playerResult(page) {
  await page.waitForSelector('#player[data-state=playing]', { timeout: 30000 });
  return page.evaluate(async () => {
    const box = document.getElementById('player');
    const video = box.querySelector('video');
    const img = box.querySelector('img');
    const out = { mode: box.dataset.mode, error: document.getElementById('error').textContent, detail: document.getElementById('detail').textContent };
    if (video) {
      const f0 = video.getVideoPlaybackQuality().totalVideoFrames;
      await new Promise((r) => setTimeout(r, 1500));
      Object.assign(out, { frames0: f0, frames1: video.getVideoPlaybackQuality().totalVideoFrames,
        width: video.videoWidth, height: video.videoHeight });
    }
    if (img) Object.assign(out, { img_width: img.naturalWidth, img_height: img.naturalHeight });
    return out;
  });
}

const results = {};
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('dialog', (d) => d.accept());
  await page.goto(root);
  await page.waitForSelector('.card[data-name=demo][data-state]');
  results.index = await page.evaluate(() => [...document.querySelectorAll('.card')].map((c) => ({
    name: c.dataset.name, state: c.dataset.state,
    sources: [...c.querySelectorAll('.sources code')].map((e) => e.textContent),
    readers: c.querySelector('.readers').textContent,
  })));
  // The thumbnail (api/frame.jpeg, width=320) shows once the snapshot is ready.
  results.thumb_width = await page.waitForFunction(() => {
    const img = document.querySelector('.card[data-name=demo] .thumb img');
    return img && img.complete && img.naturalWidth > 0 && img.naturalWidth;
  }, null, { timeout: 30000 }).then((h) => h.jsonValue()).catch(() => 0);
  results.title = await page.title();

  // A bad source shows the server's error text.
  await page.fill('#add-name', 'broken');
  await page.fill('#add-src', 'nosuchscheme://x');
  await page.click('#add-submit');
  await page.waitForFunction(() => document.getElementById('add-error').textContent !== '');
  results.add_error = await page.textContent('#add-error');

  // A good one appears in the list.
  await page.fill('#add-name', 'added');
  await page.fill('#add-src', 'demo:clip');
  await page.click('#add-submit');
  await page.waitForSelector('.card[data-name=added]', { timeout: 30000 });
  results.added = await page.evaluate(() => document.querySelector('.card[data-name=added] .sources code').textContent);
  results.add_error_after = await page.textContent('#add-error');
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(shots, 'index-desktop.png'), fullPage: true });

  // The player: forced MSE, then auto (the best mode the server and browser share), then MJPEG.
  const player = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  player.on('pageerror', (e) => errors.push(`player error: ${e.message}`));
  await player.goto(`${root}stream.html?src=added&mode=mse`);
  results.mse = await playerResult(player);
  await player.goto(`${root}stream.html?src=added`);
  results.auto = await playerResult(player);
  await player.screenshot({ path: join(shots, 'stream-desktop.png') });
  // Forced WebRTC: reported, not asserted (the WebRTC server is new; see the test's report).
  await player.goto(`${root}stream.html?src=added&mode=webrtc`);
  await player.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
  results.webrtc = await player.evaluate(() => ({ state: document.getElementById('player').dataset.state, error: document.getElementById('error').textContent }));
  // No ice_servers in the config: the peer connection gets none (the page contacts no STUN server).
  results.ice_default = await player.evaluate(() => window.camrelay && window.camrelay.pc.getConfiguration().iceServers);
  // The Link parser (RFC 9725), on a header with every kind of entry.
  results.ice_parsed = await player.evaluate(() => iceServersFromLinks('<stun:10.0.0.1:3478>; rel="ice-server", '
    + '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="user"; credential="p,w\\"d"; credential-type="password", '
    + '<https://example.com/x>; rel="next", <turn:nocreds.example.net>; rel="ice-server", <stuns:s.example.net>;rel=ice-server'));
  // The player asks OPTIONS api/webrtc and hands the servers of its Link headers to the peer connection.
  const link = '<stun:127.0.0.1:3478>; rel="ice-server", <turn:127.0.0.1:3479?transport=udp>; rel="ice-server"; username="u"; credential="c"; credential-type="password"';
  let optionsAsked = 0;
  await player.route('**/api/webrtc?*', (route) => {
    if (route.request().method() !== 'OPTIONS') return route.continue();
    optionsAsked++;
    return route.fulfill({ status: 204, headers: { Link: link } });
  });
  await player.goto(`${root}stream.html?src=added&mode=webrtc`);
  await player.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
  results.ice_from_options = await player.evaluate(() => window.camrelay && window.camrelay.pc.getConfiguration().iceServers);
  results.ice_options_asked = optionsAsked;
  await player.unroute('**/api/webrtc?*');
  // media=video: MSE asks for no audio codec.
  await player.goto(`${root}stream.html?src=added&mode=mse&media=video`);
  results.mse_video_only = await playerResult(player);
  await player.goto(`${root}stream.html?src=added&mode=hls`);
  results.hls = await playerResult(player);
  await player.goto(`${root}stream.html?src=added&mode=mjpeg`);
  results.mjpeg = await playerResult(player);
  await player.goto(`${root}links.html?src=added`);
  await player.waitForSelector('.link-row');
  results.links = await player.$$eval('.link-row code', (c) => c.map((e) => e.textContent));
  await player.screenshot({ path: join(shots, 'links-desktop.png') });
  await player.goto(`${root}editor.html`);
  await player.waitForFunction(() => document.getElementById('config').value.includes('added'));
  results.config = await player.$eval('#config', (t) => t.value);
  // Edit and save through the page: the server validates and writes the file.
  await player.$eval('#config', (t) => { t.value += '# saved from the editor\n'; });
  await player.click('#save');
  await player.waitForFunction(() => document.getElementById('saved').textContent.length > 0 || document.getElementById('error').textContent.length > 0);
  results.config_saved = await player.textContent('#saved');
  results.config_after = await (await fetch(`${root}api/config`)).text();
  await player.screenshot({ path: join(shots, 'editor-desktop.png') });
  await player.goto(`${root}log.html`);
  await player.waitForFunction(() => document.getElementById('log').textContent.includes('listen addr='));
  results.log = await player.textContent('#log');
  await player.screenshot({ path: join(shots, 'log-desktop.png') });
  await player.close();

  // Phone width: nothing wider than the screen.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  phone.on('pageerror', (e) => errors.push(`phone error: ${e.message}`));
  await phone.goto(root);
  await phone.waitForSelector('.card[data-name=added]');
  await phone.waitForTimeout(1500);
  results.phone_index_width = await phone.evaluate(() => document.documentElement.scrollWidth);
  await phone.screenshot({ path: join(shots, 'index-phone.png'), fullPage: true });
  await phone.goto(`${root}stream.html?src=added&mode=mse`);
  results.phone_mse = await playerResult(phone);
  results.phone_stream_width = await phone.evaluate(() => document.documentElement.scrollWidth);
  await phone.screenshot({ path: join(shots, 'stream-phone.png') });
  await phone.close();

  // Dark colour scheme.
  const dark = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
  await dark.goto(root);
  await dark.waitForSelector('.card[data-name=added]');
  await dark.waitForTimeout(1500);
  await dark.screenshot({ path: join(shots, 'index-dark.png') });
  await dark.goto(`${root}stream.html?src=added&mode=mjpeg`);
  await dark.waitForSelector('#player[data-state=playing]', { timeout: 30000 });
  await dark.screenshot({ path: join(shots, 'stream-dark.png') });
  await dark.close();

  // Edit the added stream's sources through its card: a bad line shows the server's error in the form, a
  // good source replaces demo:clip at once (and in the config file), and the player shows its 320x180.
  await page.reload();
  await page.waitForSelector('.card[data-name=added][data-state]');
  await page.click('.card[data-name=added] button.edit');
  const form = '.card[data-name=added] form.edit';
  await page.waitForSelector(`${form} textarea`);
  results.edit_initial = await page.inputValue(`${form} textarea`);
  await page.fill(`${form} textarea`, 'demo:clip\nnosuchscheme://x');
  await page.click(`${form} button[type=submit]`);
  await page.waitForFunction((f) => document.querySelector(`${f} .error`).textContent !== '', form);
  results.edit_error = await page.textContent(`${form} .error`);
  results.edit_sources_after_error = ((await (await fetch(`${root}api/streams?src=added`)).json()).producers || []).map((p) => p.url);
  const small = 'ffmpeg:demo#video=h264#width=320#height=180';
  await page.fill(`${form} textarea`, `  ${small}  \n\n`);
  await page.screenshot({ path: join(shots, 'index-edit-desktop.png'), fullPage: true });
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(form, { state: 'detached', timeout: 30000 });
  await page.waitForFunction((u) => [...document.querySelectorAll('.card[data-name=added] .sources code')].map((e) => e.textContent).join('\n') === u, small, { timeout: 30000 });
  results.edited_card = await page.$$eval('.card[data-name=added] .sources code', (c) => c.map((e) => e.textContent));
  results.edited_api = ((await (await fetch(`${root}api/streams?src=added`)).json()).producers || []).map((p) => p.url);
  results.edited_config = await (await fetch(`${root}api/config`)).text();
  const edited = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  edited.on('pageerror', (e) => errors.push(`edited player error: ${e.message}`));
  await edited.goto(`${root}stream.html?src=added&mode=mse`);
  results.edited_mse = await playerResult(edited);
  await edited.close();
  // The edit form at phone width.
  const phoneEdit = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  phoneEdit.on('pageerror', (e) => errors.push(`phone edit error: ${e.message}`));
  await phoneEdit.goto(root);
  await phoneEdit.waitForSelector('.card[data-name=added][data-state]');
  await phoneEdit.click('.card[data-name=added] button.edit');
  await phoneEdit.waitForSelector(`${form} textarea`);
  await phoneEdit.fill(`${form} textarea`, `${small}\nrtsp://admin:***@192.168.1.20/live`);
  await phoneEdit.click(`${form} button[type=submit]`);
  await phoneEdit.waitForFunction((f) => document.querySelector(`${f} .error`).textContent !== '', form);
  results.edit_masked_error = await phoneEdit.textContent(`${form} .error`);
  results.phone_edit_width = await phoneEdit.evaluate(() => document.documentElement.scrollWidth);
  await phoneEdit.locator('.card[data-name=added]').screenshot({ path: join(shots, 'index-edit-phone.png') });
  await phoneEdit.close();

  // Delete (the confirm dialog is accepted above): the card goes away.
  await page.click('.card[data-name=added] button.danger');
  await page.waitForSelector('.card[data-name=added]', { state: 'detached', timeout: 30000 });
  results.deleted = true;
  results.streams_after = Object.keys(await (await fetch(`${root}api/streams`)).json());
} catch (e) {
  results.error = String(e && e.message || e);
} finally {
  await browser.close();
  server.kill('SIGTERM');
}
if (errors.length) results.page_errors = errors;
console.log(JSON.stringify(results));
process.exit(results.error ? 1 : 0);
