#!/usr/bin/env bash
# The integration tests and `npm run cluster` start their own PostgreSQL 15 servers from the
# machine's binaries; install Debian's postgresql-15 when they are missing. Non-interactive so CI
# (no stdin) can run it. The servers the package may start are not used.
set -euo pipefail
bin="${HOP_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ -x "$bin/postgres" ] && [ -x "$bin/pg_basebackup" ] && [ -x "$bin/initdb" ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ensure-postgres: no PostgreSQL 15 binaries in $bin and apt-get is not available as root; install postgresql-15 or set HOP_PG_BIN" >&2
  exit 1
fi
echo "== installing postgresql-15 from apt"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-contrib >/dev/null 2>&1 \
  || apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
