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
    const timer = setTimeout(() => reject(new Error('camrelay did not start')), 20000);
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
