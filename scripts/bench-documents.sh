#!/usr/bin/env bash
# Memory and throughput of document transfers (issue 13, item 7): `cargo bench --bench
# documents_http` (benches/documents_http.rs) against one release `dhara serve --no-worker`:
# peak RSS growth while 200 MB of over-limit uploads are refused and while a 30 MB file is
# downloaded by 10 clients at once (target < 10 MB each), and upload/download throughput.
# A benchmark, not part of the test suite. Knobs: BENCH_REFUSED_MB, BENCH_REFUSED_AT_ONCE,
# BENCH_FILE_MB, BENCH_DOWNLOADERS, DHARA_BIN; any DHARA_* setting reaches the server. Uses the
# dev services of scripts/services.sh (DHARA_DEV_MONGO_PORT / DHARA_DEV_REDIS_PORT pick other
# ports, away from a test run), or MONGODB_URI / REDIS_URL when set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mongo_port="${DHARA_DEV_MONGO_PORT:-27017}"
redis_port="${DHARA_DEV_REDIS_PORT:-6379}"
if [ -z "${MONGODB_URI:-}" ]; then
  bash scripts/services.sh
  export MONGODB_URI="mongodb://127.0.0.1:$mongo_port/?directConnection=true"
fi
if [ -z "${REDIS_URL+set}" ]; then
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi
exec cargo bench --locked --bench documents_http
