import { launchChromium } from './camrelay.mjs';
// Opens MediaMTX's player pages that camrelay serves when loaded from a mediamtx.yml: the HLS page
// (http://HLS/PATH/, hls.js) and the WebRTC page (http://WEBRTC/PATH/, WHEP), and prints one JSON line:
// decoded frames and size per page. Usage (inside `unshare --net`, see ../mediamtx.rs):
//   node mediamtx_pages.mjs HLS_ADDR WEBRTC_ADDR PATH

const [hls, webrtc, path] = process.argv.slice(2);
const browser = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns']);

// Resolves once the page's <video> decoded `frames` frames.
async function frames(page, frames) {
  return page.evaluate(async (frames) => {
    const video = document.querySelector('video');
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout: ${video.getVideoPlaybackQuality().totalVideoFrames} frames; page says: ${document.getElementById('error').textContent}`)), 30000);
      const tick = () => {
        const q = video.getVideoPlaybackQuality();
        if (q.totalVideoFrames >= frames) {
          clearTimeout(timer);
          resolve({ frames: q.totalVideoFrames, width: video.videoWidth, height: video.videoHeight });
          return;
        }
        setTimeout(tick, 50);
      };
      tick();
    });
  }, frames);
}

const results = {};
try {
  const hlsPage = await browser.newPage();
  await hlsPage.goto(`http://${hls}/${path}/`);
  results.hls = await frames(hlsPage, 30);
  const rtcPage = await browser.newPage();
  await rtcPage.goto(`http://${webrtc}/${path}/`);
  results.webrtc = await frames(rtcPage, 30);
} catch (e) {
  results.error = String(e);
}
await browser.close();
console.log(JSON.stringify(results));
