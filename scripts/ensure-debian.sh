#!/usr/bin/env bash
# Install the Debian packages the tests and scripts use, when their command is missing:
#   bash scripts/ensure-debian.sh promtool=prometheus haproxy=haproxy ...
# Non-interactive so CI (no stdin) can run it. Only the programs are wanted: services the packages
# would start are kept from starting, now and at boot (prometheus would hold port 9090, say), since
# tests and scripts start their own on free ports.
set -euo pipefail
missing=()
for pair in "$@"; do
  cmd="${pair%%=*}"
  pkg="${pair#*=}"
  command -v "$cmd" >/dev/null || missing+=("$pkg")
done
[ "${#missing[@]}" = 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-debian: missing ${missing[*]} and apt-get is not available as root; install them" >&2
  exit 1
fi
echo "== installing ${missing[*]} from apt"
export DEBIAN_FRONTEND=noninteractive
# The postinst scripts start services through invoke-rc.d or deb-systemd-invoke, which both ask
# policy-rc.d; 101 means "not now". A machine's own policy-rc.d is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Whatever that policy said, none of their services is left running or set to start at boot.
for pkg in "${missing[@]}"; do
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "$pkg.service" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$pkg" ]; then
    "/etc/init.d/$pkg" stop >/dev/null 2>&1 || true
    update-rc.d "$pkg" disable >/dev/null 2>&1 || true
  fi
done
for pair in "$@"; do command -v "${pair%%=*}" >/dev/null; done
