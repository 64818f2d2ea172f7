// Plays streams with H.264 and each camera audio codec (AAC 44.1 kHz, PCMA 8 kHz, PCMU 8 kHz, PCMA
// 16 kHz) over WebRTC in headless Chromium and prints one JSON line: per case, the inbound audio's
// getStats (codec, packets, samples, concealed samples, audio energy) and the video frames decoded,
// plus /api/streams while two pages play the AAC stream (one shared transcoder).
// Usage (inside `unshare --net`, see ../webrtc_audio.rs): node webrtc_audio.mjs CAMRELAY_BIN
import { startCamrelay, launchChromium } from './camrelay.mjs';

const bin = process.argv[2];
// ffmpeg publishes each camera over RTSP into camrelay (exec: with {output}).
const camera = (audio) => `exec:ffmpeg -hide_banner -v error -re -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p ${audio} -f rtsp {output}`;
const config = JSON.stringify({
  api: { listen: '127.0.0.1:0', origin: '*' },
  rtsp: { listen: '127.0.0.1:0', rtp_listen: '', rtcp_listen: '' },
  webrtc: { listen: '0.0.0.0:0' },
  streams: {
    aac: camera('-c:a aac -ar 44100 -ac 1'),
    pcma: camera('-c:a pcm_alaw -ar 8000 -ac 1'),
    pcmu: camera('-c:a pcm_mulaw -ar 8000 -ac 1'),
    pcma16k: camera('-c:a pcm_alaw -ar 16000 -ac 1'),
  },
});
const { api, log, server } = await startCamrelay(bin, ['-c', config]);

const browser = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns']);

// Runs in the page: WHEP with recvonly video and audio (audio codecs limited to `only` when given),
// then waits `ms` and returns the stats.
async function play(page, url, only, ms) {
  return page.evaluate(async ({ url, only, ms }) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    const audio = pc.addTransceiver('audio', { direction: 'recvonly' });
    if (only) {
      const codecs = RTCRtpReceiver.getCapabilities('audio').codecs.filter((c) => c.mimeType.toLowerCase() === only);
      audio.setCodecPreferences(codecs);
    }
    const stream = new MediaStream();
    pc.ontrack = (ev) => {
      stream.addTrack(ev.track);
      document.querySelector('video').srcObject = stream;
    };
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error(`WHEP: ${res.status} ${await res.text()}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    await new Promise((r) => setTimeout(r, ms));
    const stats = await pc.getStats();
    const out = { state: pc.connectionState };
    for (const s of stats.values()) {
      if (s.type !== 'inbound-rtp') continue;
      const codec = s.codecId ? stats.get(s.codecId) : null;
      if (s.kind === 'audio') {
        out.audio = {
          codec: codec && codec.mimeType, clock: codec && codec.clockRate, packets: s.packetsReceived,
          samples: s.totalSamplesReceived, concealed: s.concealedSamples, energy: s.totalAudioEnergy,
          level: s.audioLevel, duration: s.totalSamplesDuration,
        };
      } else {
        out.video = { codec: codec && codec.mimeType, frames: s.framesDecoded };
      }
    }
    window.__pc = pc;
    return out;
  }, { url, only, ms });
}

const result = {};
try {
  const cases = [
    ['aac', 'aac', null],
    ['pcma', 'pcma', null],
    ['pcmu', 'pcmu', null],
    ['pcma16k', 'pcma16k', null],
    // A browser that takes only Opus: the 8 kHz PCMA camera is transcoded too.
    ['pcma_opus_only', 'pcma', 'audio/opus'],
  ];
  for (const [name, src, only] of cases) {
    const page = await browser.newPage();
    await page.setContent('<video autoplay playsinline></video>');
    result[name] = await play(page, `http://${api}/api/webrtc?src=${src}`, only, 5000);
    await page.close();
  }
  // Two viewers of the AAC stream share one transcoder.
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await browser.newPage();
    await page.setContent('<video autoplay playsinline></video>');
    pages.push(page);
  }
  const both = await Promise.all(pages.map((p) => play(p, `http://${api}/api/webrtc?src=aac`, null, 3000)));
  result.shared = { viewers: both, streams: await (await fetch(`http://${api}/api/streams`)).json() };
} catch (e) {
  result.error = String(e && e.stack || e);
}
result.log = log.filter((l) => /audio transcoder|transcoded|WRN|ERR/.test(l)).slice(-40);
console.log(JSON.stringify(result));
await browser.close();
server.kill('SIGTERM');
process.exit(0);
