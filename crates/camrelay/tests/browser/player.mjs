// The player page (stream.html) in headless Chromium: every mode plays the demo stream (H.264 + AAC), the
// stats overlay names mode, codec, size and delay, the automatic mode picks by what the browser decodes
// and says why it left modes out (an H.265 stream: this Chromium has no H.265 decoder, see ../player.rs),
// mute, fullscreen, the microphone button (fake device), and a forced impossible mode's reason.
// Prints one JSON line of findings.
// Usage (inside `unshare --net` with the veth address 10.99.0.1, see ../player.rs):
//   node player.mjs CAMRELAY_BIN SCREENSHOT_DIR
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCamrelay, launchChromium } from './camrelay.mjs';

const [bin, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'camrelay-player-'));
const file = join(dir, 'camrelay.yaml');
const base = '{"api":{"listen":"127.0.0.1:0"},"rtsp":{"listen":"127.0.0.1:0","rtp_listen":"","rtcp_listen":""},"webrtc":{"listen":"0.0.0.0:0","candidates":["10.99.0.1"]}}';
// demo: H.264 + AAC; hevc: the demo transcoded to H.265 by ffmpeg (video only).
writeFileSync(file, 'streams:\n  demo: demo:clip\n  hevc: ffmpeg:demo#video=h265\n');
const { api, log, server } = await startCamrelay(bin, ['-c', base, '-c', file], { cwd: dir });
const root = `http://${api}/`;

const browser = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream']);

/** The page's state after it settled (playing or error): mode, picture, time advancing, stats, reasons. */
async function settle(page, url) {
  await page.goto(`${root}${url}`);
  await page.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 60000 });
  // Two stats ticks, and time to see the picture move.
  return page.evaluate(async () => {
    const box = document.getElementById('player');
    const media = () => box.querySelector('video, img');
    const video = box.querySelector('video');
    const t0 = video ? video.currentTime : null;
    const f0 = video ? video.getVideoPlaybackQuality().totalVideoFrames : null;
    await new Promise((r) => setTimeout(r, 2500));
    const stats = document.getElementById('stats');
    const m = media();
    return {
      state: box.dataset.state, mode: box.dataset.mode || null, skipped: box.dataset.skipped || '',
      overlay: document.getElementById('overlay').textContent,
      error: document.getElementById('error').textContent, info: document.getElementById('info').textContent,
      element: m ? m.tagName.toLowerCase() : null,
      width: m ? (m.videoWidth ?? m.naturalWidth) : 0, height: m ? (m.videoHeight ?? m.naturalHeight) : 0,
      time0: t0, time1: video ? video.currentTime : null,
      frames0: f0, frames1: video ? video.getVideoPlaybackQuality().totalVideoFrames : null,
      muted: video ? video.muted : null,
      stats: { ...stats.dataset, text: stats.innerText, visible: !stats.hidden && stats.offsetWidth > 0 },
      plan: window.camrelayPlan || null,
      buttons: Object.fromEntries(['mute', 'stats-toggle', 'fullscreen', 'mic'].map((id) => {
        const b = document.getElementById(id);
        return [id, { visible: !b.hidden && b.offsetWidth > 0, pressed: b.getAttribute('aria-pressed'), text: b.textContent.trim() }];
      })),
    };
  });
}

/** The audio m-line's direction in an SDP. */
const audioDirection = (page, which) => page.evaluate((w) => {
  const pc = window.camrelay && window.camrelay.pc;
  const d = pc && pc[w];
  const m = d && d.sdp.split(/\r?\n(?=m=)/).find((s) => s.startsWith('m=audio'));
  return m ? (m.match(/^a=(sendrecv|sendonly|recvonly|inactive)/m) || [])[1] || 'sendrecv' : null;
}, which);

const results = {};
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  results.capabilities = await page.evaluate(() => ({
    webrtc_h265: RTCRtpReceiver.getCapabilities('video').codecs.some((c) => /h265/i.test(c.mimeType)),
    mse_h265: MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L153.B0"'),
  }));
  // Every mode plays the demo.
  for (const mode of ['webrtc', 'mse', 'hls', 'mjpeg']) {
    results[mode] = await settle(page, `stream.html?src=demo&mode=${mode}`);
    await page.screenshot({ path: join(shots, `player-${mode}.png`) });
  }
  // Auto: with sound wanted, the mode that plays H.264 and AAC; video alone: the lowest delay.
  results.auto = await settle(page, 'stream.html?src=demo');
  results.auto_video = await settle(page, 'stream.html?src=demo&media=video');
  // A list in mode= keeps its order (go2rtc's mode=mse,webrtc).
  results.list = await settle(page, 'stream.html?src=demo&mode=mjpeg,mse');
  // A name this page does not play (go2rtc's mp4) is passed over, and said so.
  results.list_unknown = await settle(page, 'stream.html?src=demo&mode=mp4,mse');

  // Mute toggles video.muted; the button follows.
  await settle(page, 'stream.html?src=demo&mode=mse');
  results.mute0 = await page.evaluate(() => document.querySelector('#player video').muted);
  await page.click('#mute');
  results.mute1 = await page.evaluate(() => ({ muted: document.querySelector('#player video').muted, text: document.getElementById('mute').textContent, pressed: document.getElementById('mute').getAttribute('aria-pressed') }));
  await page.click('#mute');
  results.mute2 = await page.evaluate(() => document.querySelector('#player video').muted);
  // Stats button hides the overlay.
  await page.click('#stats-toggle');
  results.stats_hidden = await page.evaluate(() => document.getElementById('stats').offsetWidth === 0);
  await page.click('#stats-toggle');
  // Fullscreen: the player box (video and its controls) fills the screen; again leaves.
  await page.click('#fullscreen');
  await page.waitForFunction(() => document.fullscreenElement, null, { timeout: 30000 }).catch(() => {});
  results.fullscreen = await page.evaluate(() => ({ element: document.fullscreenElement && document.fullscreenElement.id, text: document.getElementById('fullscreen').textContent }));
  await page.click('#fullscreen');
  await page.waitForFunction(() => !document.fullscreenElement, null, { timeout: 30000 }).catch(() => {});
  results.fullscreen_after = await page.evaluate(() => !!document.fullscreenElement);

  // The microphone button on a WebRTC session that sends nothing: a new session whose offer sends the
  // fake microphone (the demo has no backchannel: the answer refuses it and the page says so).
  results.mic_before = await settle(page, 'stream.html?src=demo&mode=webrtc&media=video');
  results.mic_before.offer_audio = await audioDirection(page, 'localDescription');
  await page.click('#mic');
  await page.waitForSelector('#player[data-mic=sending], #player[data-mic=refused], #player[data-mic=error]', { timeout: 30000 });
  results.mic_after = {
    offer_audio: await audioDirection(page, 'localDescription'),
    answer_audio: await audioDirection(page, 'remoteDescription'),
    mic: await page.evaluate(() => document.getElementById('player').dataset.mic),
    note: await page.textContent('#mic-note'),
    track: await page.evaluate(() => window.camrelay.pc.getTransceivers().filter((t) => t.sender.track).map((t) => `${t.sender.track.kind}:${t.sender.track.label}`)),
    url: page.url(),
  };

  // H.265: this Chromium decodes no H.265 (no hardware decoder): forced modes say so, auto falls back.
  results.hevc_webrtc = await settle(page, 'stream.html?src=hevc&mode=webrtc');
  await page.screenshot({ path: join(shots, 'player-hevc-webrtc.png') });
  results.hevc_mse = await settle(page, 'stream.html?src=hevc&mode=mse');
  results.hevc_auto = await settle(page, 'stream.html?src=hevc');
  await page.screenshot({ path: join(shots, 'player-hevc-auto.png') });
  results.unknown_mode = await page.goto(`${root}stream.html?src=demo&mode=flash`).then(() => page.textContent('#error'));
} catch (e) {
  results.error = String(e && e.stack || e);
} finally {
  await browser.close();
  server.kill('SIGTERM');
}
if (errors.length) results.page_errors = errors;
results.log = log.filter((l) => /WARN|ERROR/.test(l)).slice(-20);
console.log(JSON.stringify(results));
process.exit(results.error ? 1 : 0);
