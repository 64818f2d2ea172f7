#!/usr/bin/env bash
# The whole test suite: installs what the tests need on a fresh Debian machine, then runs the
# format and lint checks and every test (unit, camera-capture regressions, integration with ffmpeg).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the integration tests use: ffmpeg/ffprobe (clients, publishers, transcoding) and a
# GStreamer RTSP server (the "camera we did not write") driven from Debian's python3-gi.
apt_packages=(ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  chromium iproute2 util-linux openssl lighttpd websockify curl python3-venv srt-tools libopus-dev pkg-config
  gir1.2-gst-plugins-bad-1.0 gstreamer1.0-nice)
# Node.js and npm drive Chromium through Playwright; Debian's packages if the machine has none.
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # Servers the tests run themselves (lighttpd) must not start as system services on install.
  policy_rc=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy_rc=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null
    $SUDO chmod +x "$policy_rc"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy_rc" ] || $SUDO rm -f "$policy_rc"
fi

# aiortc: the WebRTC client/publisher of the WHEP/WHIP tests (crates/camrelay/tests/webrtc.rs).
python3 -c 'import aiortc' 2>/dev/null || python3 -m pip install --quiet aiortc==1.16.0
# m3u8: the strict playlist parser of the LL-HLS tests (crates/camrelay/tests/llhls.rs).
python3 -c 'import m3u8' 2>/dev/null || python3 -m pip install --quiet m3u8==6.0.0

# A modern ffmpeg for tests/rtmp_enhanced.rs: Debian's is 5.1, without Enhanced RTMP. PyPI's
# imageio-ffmpeg 0.8.1 carries a static ffmpeg 9.0.2 (libx265, svt-av1, libvpx, libopus, openssl,
# enhanced RTMP/FLV); in its own virtualenv, its path exported as CAMRELAY_FFMPEG9 (tests/common ffmpeg9()).
ffmpeg9_venv=target/ffmpeg9-venv
if ! "$ffmpeg9_venv/bin/pip" show imageio-ffmpeg 2>/dev/null | grep -qx 'Version: 0.8.1'; then
  rm -rf "$ffmpeg9_venv"
  python3 -m venv "$ffmpeg9_venv"
  "$ffmpeg9_venv/bin/pip" install --quiet --disable-pip-version-check imageio-ffmpeg==0.8.1
fi
CAMRELAY_FFMPEG9=$("$ffmpeg9_venv/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')
export CAMRELAY_FFMPEG9

# Home Assistant's go2rtc client (PyPI `go2rtc-client`, Python 3.12) for tests/home_assistant.rs, and
# the OpenAPI validator `openapi-core` for tests/v3_api.rs, in one virtualenv: the machine's python3
# is older. pyenv's 3.12 when there is no python3.12.
ha_venv=target/ha-venv
ha_requirements=crates/camrelay/tests/fixtures/ha-requirements.txt
if ! cmp -s "$ha_requirements" "$ha_venv/requirements.txt" 2>/dev/null; then
  py312=""
  # A pyenv shim named python3.12 may exist without being runnable: try each candidate.
  for candidate in $(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null) $(command -v python3.12 || true); do
    if "$candidate" -c 'import venv' >/dev/null 2>&1; then py312=$candidate; break; fi
  done
  if [ -z "$py312" ]; then
    echo "error: Python 3.12 is needed for the Home Assistant test (go2rtc-client); install python3.12" >&2
    exit 1
  fi
  rm -rf "$ha_venv"
  "$py312" -m venv "$ha_venv"
  "$ha_venv/bin/pip" install --quiet --disable-pip-version-check -r "$ha_requirements"
  cp "$ha_requirements" "$ha_venv/requirements.txt"
fi

# Playwright (driver only; the browser is Debian's chromium) for the headless browser tests.
if [ ! -d crates/camrelay/tests/browser/node_modules/playwright-core ]; then
  (cd crates/camrelay/tests/browser && npm ci --no-audit --no-fund)
fi

export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
