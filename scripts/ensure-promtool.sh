#!/usr/bin/env bash
# The metrics tests check /metrics with `promtool check metrics`; install Debian's prometheus (which
# ships promtool) when it is missing. Non-interactive so CI (no stdin) can run it. Only promtool is
# wanted: the package's server is kept from starting, now and at boot (it would hold port 9090).
set -euo pipefail
if command -v promtool >/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-promtool: promtool is missing and apt-get is not available as root; install prometheus" >&2
  exit 1
fi
echo "== installing prometheus (for promtool) from apt"
export DEBIAN_FRONTEND=noninteractive
# The postinst starts the service through invoke-rc.d or deb-systemd-invoke, which both ask
# policy-rc.d; 101 means "not now". A machine's own policy-rc.d is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Whatever that policy said, no prometheus server is left running or set to start at boot.
if [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
else
  /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null
