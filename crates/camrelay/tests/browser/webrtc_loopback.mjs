// The player page in WebRTC mode where the browser has no network address to offer: camrelay and
// Chromium share a network namespace with only loopback (see ../webrtc_loopback.rs), so Chromium's offer
// carries no candidate lines (or, with mDNS hiding on, at most `.local` names). The server is ICE-lite and
// learns the browser's address from its connectivity checks, so playback must still work.
// Prints one JSON line of findings: for each Chromium variant, the offer's candidates, the ICE states the
// page went through, and the decoded video (first when the page says it plays, then after 50 frames).
// Usage: node webrtc_loopback.mjs CAMRELAY_BIN
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCamrelay } from './camrelay.mjs';
import { chromium } from 'playwright-core';

const bin = process.argv[2];
// The server listens on all interfaces of the namespace: it announces 127.0.0.1.
const config = '{"api":{"listen":"127.0.0.1:0"},"rtsp":{"listen":"127.0.0.1:0","rtp_listen":"","rtcp_listen":""},"webrtc":{"listen":"0.0.0.0:0"}}';
const cwd = mkdtempSync(join(tmpdir(), 'camrelay-webrtc-loopback-'));
const { api, log, server } = await startCamrelay(bin, ['-c', config], { cwd });
const root = `http://${api}/`;

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];
// Chromium uses no loopback interface for WebRTC unless told to, and then gathers its loopback address
// without listing it in the offer: the offer has no candidate line, and its checks still reach the
// server. With mDNS hiding on, Chromium on loopback alone never finishes gathering and sends no check,
// so the names are off; an offer with `.local` candidates is covered by the server's unit tests.
const VARIANTS = {
  loopback: [...ARGS, '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'],
};

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

/** The player's state, its video, and the peer connection's ICE view. */
function playerState(page) {
  return page.evaluate(() => {
    const box = document.getElementById('player');
    const video = box.querySelector('video');
    const pc = window.camrelay && window.camrelay.pc;
    const offer = (pc && pc.localDescription && pc.localDescription.sdp) || '';
    return {
      state: box.dataset.state, mode: box.dataset.mode,
      error: document.getElementById('error').textContent,
      frames: video ? video.getVideoPlaybackQuality().totalVideoFrames : 0,
      width: video ? video.videoWidth : 0, height: video ? video.videoHeight : 0,
      current_time: video ? video.currentTime : 0,
      offer_candidates: offer.match(/^a=candidate:[^\r\n]*/gm) || [],
      ice: pc && pc.iceConnectionState, connection: pc && pc.connectionState,
      ice_states: window.__iceStates || [],
    };
  });
}

const results = {};
try {
  for (const [name, args] of Object.entries(VARIANTS)) {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args });
    try {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      // Record every ICE connection state the player's peer connection goes through.
      await page.addInitScript(() => {
        window.__iceStates = [];
        const Native = window.RTCPeerConnection;
        window.RTCPeerConnection = function (...a) {
          const pc = new Native(...a);
          pc.addEventListener('iceconnectionstatechange', () => window.__iceStates.push(pc.iceConnectionState));
          return pc;
        };
        window.RTCPeerConnection.prototype = Native.prototype;
      });
      await page.goto(`${root}stream.html?src=demo&mode=webrtc`);
      await page.waitForSelector('#player[data-state=playing], #player[data-state=error]', { timeout: 30000 });
      const r = { first: await playerState(page) };
      // Decoded video that keeps coming: 50 frames (2 s of the demo's 25 fps) and the clock moving on.
      r.playing = await until(async () => {
        const s = await playerState(page);
        return s.frames >= 50 && s.current_time > r.first.current_time + 1 && s;
      }, 20000) || await playerState(page);
      if (errors.length) r.page_errors = errors;
      results[name] = r;
    } finally {
      await browser.close();
    }
  }
} catch (e) {
  results.error = String(e && e.message || e);
} finally {
  server.kill('SIGTERM');
}
results.log = log.filter((l) => /WRN|ERR|WARN|ERROR|webrtc/i.test(l)).slice(-30);
console.log(JSON.stringify(results));
process.exit(results.error ? 1 : 0);
