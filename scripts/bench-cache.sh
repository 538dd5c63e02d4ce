#!/usr/bin/env bash
# Read throughput with and without the response cache (issue 11, item 6). Runs
# `cargo bench --bench cache_http` (benches/cache_http.rs): it seeds a database of its own
# (`dhara seed`, one therapist, BENCH_CLIENTS (40) clients, BENCH_MONTHS (6) months), starts one
# `dhara serve --no-worker` on a free loopback port with the cache on, then one with
# DHARA_CACHE__ENABLED=false, and prints for /health, /api/auth/me, /api/bookings?limit=20,
# /api/clients?limit=20 and /api/dashboard: requests per second, p50 and p99 under
# BENCH_CONCURRENCY (32) closed-loop workers for BENCH_SECS (5) s, p99 of an open-loop run at
# BENCH_LOAD_FRACTION (0.8) of that rate, the ratio to /health, errors, MongoDB commands and cache
# hits per request and CPU use; then the same database work as the uncached lists run through the
# driver alone (as many workers, and one), each server's memory (peak: VmHWM), and the issue's
# targets as PASS/MISS. Exits 1 only when a request failed or the run could not be made (a MISS is
# a finding, not a failure). About 3-4 minutes with the defaults against the dev database, plus the
# release build.
#
# A benchmark, not part of the test suite. Other knobs: BENCH_WARMUP_SECS (1), BENCH_SERIAL_SECS (3),
# BENCH_CLIENT_THREADS (threads of the load generator, 1), BENCH_ENDPOINTS (comma-separated paths),
# DHARA_BIN=path (another binary); any DHARA_* setting in the environment reaches the servers.
# Uses the dev services of scripts/services.sh (DHARA_DEV_MONGO_PORT / DHARA_DEV_REDIS_PORT pick
# other ports, away from a test run), or MONGODB_URI / REDIS_URL when set. The database and the Redis
# keys of the run are removed at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mongo_port="${DHARA_DEV_MONGO_PORT:-27017}"
redis_port="${DHARA_DEV_REDIS_PORT:-6379}"

if [ -z "${MONGODB_URI:-}" ]; then
  bash scripts/services.sh
  export MONGODB_URI="mongodb://127.0.0.1:$mongo_port/?directConnection=true"
  # The dev server's CPU goes into the report when it is the one services.sh started here.
  pid_file="$root/target/dev-services/mongoeco.pid"
  if [ -z "${BENCH_DB_PID:-}" ] && [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null \
    && [ -r "/proc/$(cat "$pid_file")/cmdline" ] \
    && tr '\0' ' ' <"/proc/$(cat "$pid_file")/cmdline" | grep -q -- "--port $mongo_port"; then
    export BENCH_DB_PID="$(cat "$pid_file")"
  fi
fi
if [ -z "${REDIS_URL+set}" ]; then
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi

exec cargo bench --locked --bench cache_http
