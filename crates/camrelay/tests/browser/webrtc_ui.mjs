// The player page in WebRTC mode, in headless Chromium: two-way audio from the browser's (fake) microphone
// into an exec backchannel (and the page's word when a stream has none), and the ICE servers of the
// server's config handed to the browser.
// Prints one JSON line of findings.
// Usage (inside `unshare --net` with the veth address 10.99.0.1, see ../ui.rs):
//   node webrtc_ui.mjs mic CAMRELAY_BIN SCREENSHOT_DIR OUT_FILE    the stream's backchannel writes OUT_FILE
//   node webrtc_ui.mjs refuse CAMRELAY_BIN SCREENSHOT_DIR          the microphone on a stream without backchannel
//   node webrtc_ui.mjs ice CAMRELAY_BIN SCREENSHOT_DIR             STUN/TURN listeners on 10.99.0.1
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const [what, bin, shots, out] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'camrelay-webrtc-ui-'));
const file = join(dir, 'camrelay.yaml');
// WebRTC announces the namespace's veth address: Chromium gathers no candidates on loopback alone.
const base = '{"api":{"listen":"127.0.0.1:0"},"rtsp":{"listen":"127.0.0.1:0","rtp_listen":"","rtcp_listen":""},"webrtc":{"listen":"0.0.0.0:0","candidates":["10.99.0.1"]}}';
const STUN = 3478;
const TURN = 3479;
const yaml = what === 'mic'
  // The exec source's stdin gets the backchannel's PCMA 8000 (go2rtc keeps "double-quoted" words together).
  ? `streams:\n  cam:\n    - demo:clip\n    - 'exec:sh -c "cat > ${out}"#backchannel=1'\n`
  : what === 'refuse' ? 'streams:\n  plain: demo:clip\n'
  : 'streams:\n  cam: demo:clip\nwebrtc:\n  ice_servers:\n'
    + `    - urls: ["stun:10.99.0.1:${STUN}"]\n`
    + `    - urls: ["turn:10.99.0.1:${TURN}?transport=udp"]\n      username: camuser\n      credential: "pa,ss"\n`;
writeFileSync(file, yaml);
const { api, log, server } = await startCamrelay(bin, ['-c', base, '-c', file], { cwd: dir });
const root = `http://${api}/`;

// Real host candidates (not mDNS names) inside the test's private namespace.
// A microphone that beeps, allowed without a prompt.
const browser = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);

const size = () => { try { return statSync(out).size; } catch (_) { return 0; } };

/** Polls `fn` every 100 ms until it returns a truthy value; that value, or null after `ms`. */
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The player's state, its video's decoded frames and size, and the WebRTC session's audio directions. */
function playerState(page) {
  return page.evaluate(() => {
    const box = document.getElementById('player');
    const video = box.querySelector('video');
    const mic = document.getElementById('mic');
    const pc = window.camrelay && window.camrelay.pc;
    const audioDir = (sdp) => {
      const m = (sdp || '').split(/\r?\n(?=m=)/).find((s) => s.startsWith('m=audio'));
      return m ? (m.match(/^a=(sendrecv|sendonly|recvonly|inactive)/m) || [])[1] || 'sendrecv' : null;
    };
    return {
      state: box.dataset.state, mode: box.dataset.mode, mic: box.dataset.mic,
      error: document.getElementById('error').textContent, mic_note: document.getElementById('mic-note').textContent,
      mic_button: { visible: !!mic && !mic.hidden && mic.offsetWidth > 0, pressed: mic && mic.getAttribute('aria-pressed'), label: mic && mic.textContent.trim() },
      frames: video ? video.getVideoPlaybackQuality().totalVideoFrames : 0,
      width: video ? video.videoWidth : 0, height: video ? video.videoHeight : 0,
      offer_audio: pc && pc.localDescription && audioDir(pc.localDescription.sdp),
      answer_audio: pc && pc.remoteDescription && audioDir(pc.remoteDescription.sdp),
      answer_codecs: pc && pc.remoteDescription && (pc.remoteDescription.sdp.match(/^a=rtpmap:\d+ [^\r\n]+/gm) || []).map((l) => l.replace(/^a=rtpmap:\d+ /, '')),
      sending: pc ? pc.getTransceivers().filter((t) => t.sender.track && t.sender.track.readyState === 'live').map((t) => t.sender.track.kind) : [],
      ice_servers: pc && pc.getConfiguration().iceServers,
      connection: pc && pc.connectionState,
    };
  });
}

const results = {};
const errors = [];
try {
  if (what === 'mic') {
    // The player with the microphone, as go2rtc's stream.html: WebRTC with a sendrecv audio transceiver.
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    await page.goto(`${root}stream.html?src=cam&media=video+audio+microphone`);
    await page.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
    results.playing = await playerState(page);
    // A second of PCMA is 8000 bytes: wait for three.
    results.bytes_at_start = size();
    results.bytes = await until(() => size() >= 24000 && size(), 20000) || size();
    // Video goes on while the microphone sends: more than 10 frames later (a loaded machine takes longer).
    const framesPlaying = results.playing.frames || 0;
    results.after = await until(async () => {
      const s = await playerState(page);
      return s.frames > framesPlaying + 10 && s;
    }, 20000) || await playerState(page);
    await page.screenshot({ path: join(shots, 'stream-mic-desktop.png') });
    // The toggle stops sending (the sender keeps no track); the backchannel file stops growing.
    await page.click('#mic');
    await page.waitForSelector('#mic[aria-pressed=false]');
    results.off = await playerState(page);
    const atOff = size();
    // Stopped: a whole second without a byte (packets on the way still land first).
    results.stopped = !!await until(async () => {
      const now = size();
      await new Promise((r) => setTimeout(r, 1000));
      return size() === now;
    }, 8000);
    results.bytes_after_off = size() - atOff;
    // And on again, without a new session: sending resumes.
    await page.click('#mic');
    await page.waitForSelector('#mic[aria-pressed=true]', { timeout: 30000 });
    const atOn = size();
    results.resumed_bytes = (await until(() => size() - atOn >= 8000 && size() - atOn, 15000)) || size() - atOn;
    results.on_again = await playerState(page);
    // Phone width.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    phone.on('pageerror', (e) => errors.push(`phone error: ${e.message}`));
    await phone.goto(`${root}stream.html?src=cam&media=video+audio+microphone`);
    await phone.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
    results.phone = await playerState(phone);
    results.phone_width = await phone.evaluate(() => document.documentElement.scrollWidth);
    await phone.screenshot({ path: join(shots, 'stream-mic-phone.png') });
    await phone.close();
    // Without the microphone the same stream offers receive-only audio and shows the toggle off...
    await page.goto(`${root}stream.html?src=cam&mode=webrtc`);
    await page.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
    results.no_mic = await playerState(page);
    await page.screenshot({ path: join(shots, 'stream-webrtc-desktop.png') });
    // ...and the toggle starts a new session that sends.
    const atToggle = size();
    await page.click('#mic');
    await page.waitForSelector('#player[data-mic=sending], #player[data-mic=refused], #player[data-mic=error]', { timeout: 30000 });
    results.toggled_bytes = (await until(() => size() - atToggle >= 8000 && size() - atToggle, 15000)) || size() - atToggle;
    results.toggled = await playerState(page);
    results.toggled_url = page.url();
  } else if (what === 'refuse') {
    // A stream without a backchannel: the answer takes no audio from the browser, and the page says so.
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    await page.goto(`${root}stream.html?src=plain&media=video+audio+microphone`);
    await page.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
    results.plain = await playerState(page);
    await page.screenshot({ path: join(shots, 'stream-mic-refused-desktop.png') });
  } else {
    // STUN and TURN listeners on the configured addresses: what the browser sends them shows it uses them.
    const seen = {};
    for (const [name, port] of [['stun', STUN], ['turn', TURN]]) {
      const sock = createSocket('udp4');
      sock.on('message', (msg) => {
        // A STUN header: type (0x0001 Binding, 0x0003 Allocate), length, magic cookie 0x2112A442.
        if (msg.length >= 20 && msg.readUInt32BE(4) === 0x2112a442) (seen[name] ||= []).push(msg.readUInt16BE(0));
      });
      await new Promise((r) => sock.bind(port, '10.99.0.1', r));
    }
    const options = await fetch(`${root}api/webrtc?src=cam`, { method: 'OPTIONS' });
    results.options = { status: options.status, link: options.headers.get('link') };
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    await page.goto(`${root}stream.html?src=cam&mode=webrtc`);
    await page.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
    results.playing = await playerState(page);
    await until(() => seen.stun && seen.turn, 5000);
    results.stun_messages = seen.stun || [];
    results.turn_messages = seen.turn || [];
  }
} catch (e) {
  results.error = String(e && e.message || e);
} finally {
  await browser.close();
  server.kill('SIGTERM');
}
if (errors.length) results.page_errors = errors;
results.log = log.filter((l) => /WARN|ERROR|webrtc|backchannel/i.test(l)).slice(-30);
if (what === 'mic') results.file_bytes = (() => { try { return readFileSync(out).length; } catch (_) { return 0; } })();
console.log(JSON.stringify(results));
process.exit(results.error ? 1 : 0);
