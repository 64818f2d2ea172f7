#!/usr/bin/env bash
# Runs the server (built in release mode) with the given arguments; with none, the built-in demo.
# The one build dependency beyond Rust is libopus (WebRTC audio transcoding links the system's, found
# with pkg-config): installed with apt when missing, so this works on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists opus 2>/dev/null; then
  echo "installing libopus-dev pkg-config (needed to build camrelay)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends libopus-dev pkg-config >/dev/null
fi
exec cargo run --release -p camrelay -- "$@"
