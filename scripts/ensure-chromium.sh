#!/usr/bin/env bash
# The browser tests drive Debian's Chromium; install it from apt when it is missing (never a
# downloaded browser build). Non-interactive so CI (no stdin) can run it.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: /usr/bin/chromium is missing and apt-get is not available as root; install chromium" >&2
  exit 1
fi
echo "== installing chromium from apt"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
