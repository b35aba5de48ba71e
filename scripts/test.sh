#!/usr/bin/env bash
# The whole test suite: format + lint, type check, then every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob

echo "== biome (format + lint)"
npx --no-install biome check .

echo "== typescript"
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p web/tsconfig.json

echo "== OpenAPI document (redocly lint, recommended rules)"
node --import tsx scripts/lint-openapi.ts

echo "== dashboard build"
node --import tsx scripts/build-web.ts

echo "== server bundle (what bin/hop.js runs)"
node --import tsx scripts/build-server.ts

echo "== browser for the dashboard tests"
bash scripts/ensure-chromium.sh

echo "== PostgreSQL 15 binaries for the cluster tests"
bash scripts/ensure-postgres.sh

echo "== prometheus (promtool), haproxy, the blackbox exporter, pgbackrest, redis-sentinel, patroni and etcd for the metrics, fleet, backup and failover tests"
bash scripts/ensure-debian.sh promtool=prometheus haproxy=haproxy prometheus-blackbox-exporter=prometheus-blackbox-exporter pgbackrest=pgbackrest redis-sentinel=redis-sentinel patroni=patroni etcd=etcd-server

echo "== tests"
files=(test/unit/**/*.test.ts test/integration/**/*.test.ts test/browser/**/*.test.ts)
exec node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout "${files[@]}"
