// Starts the camrelay binary for the browser tests and waits for its API address.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

/**
 * Runs `bin args...` (RUST_LOG=info) and resolves with `{ api, log, server }` once the log says
 * `INF [api] listen addr=HOST:PORT` (on stdout, as go2rtc logs): `api` is that address, `log` collects every log line, `server` is the
 * child process (kill it at the end).
 */
export async function startCamrelay(bin, args, options = {}) {
  const server = spawn(bin, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
  const log = [];
  const api = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('camrelay did not start')), 30000);
    createInterface({ input: server.stderr }).on('line', (line) => log.push(line));
    createInterface({ input: server.stdout }).on('line', (line) => {
      log.push(line);
      const m = line.match(/\[api\] listen addr=(\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  return { api, log, server };
}

/** Chromium's flags for every browser test: headless-friendly, no network of its own, autoplay. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];

/** Debian's Chromium with [`CHROMIUM_ARGS`] and a test's `extra` flags (fake devices, mDNS off...). */
export function launchChromium(extra = []) {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, ...extra] });
}

/**
 * The picture-size-change tests' rig: camrelay with an RTSP listener on 18554 (a fixed port: the test's
 * own network namespace) and a `publisher_grace`, and `publish(size)`, an ffmpeg publishing a
 * `size` test picture (H.264, 1 s GOP) to `cam` for 60 s (kill it to replace it), and `published()`,
 * which resolves once `cam` has a producer with medias: a reader that comes before the publisher's
 * ANNOUNCE finds none ("codecs not matched", seen under load).
 */
export async function startSizeChangeRig(bin) {
  const rtsp = 'rtsp://127.0.0.1:18554/cam';
  const config = '{"api":{"listen":"127.0.0.1:0","origin":"*"},"rtsp":{"listen":"127.0.0.1:18554","rtp_listen":"","rtcp_listen":""},"hub":{"publisher_grace":"10s"},"streams":{"cam":null}}';
  const started = await startCamrelay(bin, ['-c', config]);
  const publish = (size) => spawn('ffmpeg', ['-v', 'error', '-re', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=25`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p',
    '-t', '60', '-f', 'rtsp', '-rtsp_transport', 'tcp', rtsp], { stdio: 'ignore' });
  const published = async () => {
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      const r = await fetch(`http://${started.api}/api/streams?src=cam`).catch(() => null);
      const stream = r && r.ok ? await r.json() : null;
      if ((stream?.producers || []).some((p) => Array.isArray(p.medias) && p.medias.length > 0)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('cam: no publisher within 30 s');
  };
  return { ...started, publish, published };
}
