#!/usr/bin/env bash
# Memory under a sign-in burst (issue 8, item 11). Builds the release binary, starts one
# `dhara serve --no-worker` on a free loopback port with its own database and Redis prefix,
# registers a therapist, fires BENCH_LOGINS (100) concurrent `POST /api/auth/login`, samples the
# process's resident memory (VmRSS, VmHWM) during the burst and for BENCH_IDLE_SECS (10) after,
# and prints peak and idle RSS, the answers by status and the burst's wall time.
# Exits 1 when peak >= BENCH_MAX_PEAK_MB (256) or idle >= BENCH_MAX_IDLE_MB (64).
#
# A benchmark, not part of the test suite. DHARA_BIN=path skips the build (to compare binaries);
# any DHARA_* setting in the environment reaches the server, e.g.
# DHARA_AUTH__HASH_CONCURRENCY=1000 DHARA_AUTH__HASH_QUEUE=0 for the unbounded behaviour.
# Uses the dev services of scripts/services.sh (DHARA_DEV_MONGO_PORT / DHARA_DEV_REDIS_PORT pick
# other ports, away from a test run), or MONGODB_URI / REDIS_URL when set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

logins="${BENCH_LOGINS:-100}"
idle_secs="${BENCH_IDLE_SECS:-10}"
max_peak_mb="${BENCH_MAX_PEAK_MB:-256}"
max_idle_mb="${BENCH_MAX_IDLE_MB:-64}"
mongo_port="${DHARA_DEV_MONGO_PORT:-27017}"
redis_port="${DHARA_DEV_REDIS_PORT:-6379}"

own_mongo=""
if [ -z "${MONGODB_URI:-}" ]; then
  bash scripts/services.sh
  own_mongo=1
  export MONGODB_URI="mongodb://127.0.0.1:$mongo_port/?directConnection=true"
fi
if [ -z "${REDIS_URL+set}" ]; then
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi
bin="${DHARA_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --locked --bin dhara
  bin="$root/target/release/dhara"
fi

id="$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
work="$(mktemp -d "${TMPDIR:-/tmp}/dhara-bench-mem.XXXXXX")"
database="dhara_bench_mem_$id"
prefix="bench:$id:"
server_pid=""

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$own_mongo" ]; then
    # dropDatabase as one OP_MSG to the dev server (no client library needed).
    python3 - "$database" "$mongo_port" <<'PY' || echo "bench: could not drop database $database" >&2
import socket, struct, sys
def cstr(s): return s.encode() + b"\0"
name = sys.argv[1].encode()
body = (b"\x10" + cstr("dropDatabase") + struct.pack("<i", 1)
        + b"\x02" + cstr("$db") + struct.pack("<i", len(name) + 1) + name + b"\0")
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
payload = struct.pack("<I", 0) + b"\0" + doc
msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
with socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=30) as s:
    s.sendall(msg)
    s.recv(65536)
PY
  else
    echo "bench: database $database left on MONGODB_URI; drop it by hand" >&2
  fi
  if command -v redis-cli >/dev/null 2>&1 && [ -n "${REDIS_URL:-}" ]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

env \
  DHARA_ENV=development \
  PORT="$port" \
  MONGODB_DATABASE="$database" \
  JWT_SECRET="bench-memory-secret-$id-$id-$id" \
  DHARA_REDIS__PREFIX="$prefix" \
  DHARA_MAIL__FILE_DIR="$work/mail" \
  DHARA_RATE_LIMIT__LOGIN_IP__MAX=100000 \
  DHARA_RATE_LIMIT__LOGIN_ACCOUNT__MAX=100000 \
  DHARA_RATE_LIMIT__LOCKOUT__MAX=100000 \
  DHARA_LOG__FORMAT=json \
  RUST_LOG="${RUST_LOG:-warn}" \
  "$bin" serve --no-worker >"$work/server.log" 2>&1 &
server_pid=$!

set +e
python3 - "$port" "$server_pid" "$logins" "$idle_secs" "$max_peak_mb" "$max_idle_mb" <<'PY'
import http.client, json, sys, threading, time

port, pid, logins, idle_secs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
max_peak_mb, max_idle_mb = float(sys.argv[5]), float(sys.argv[6])

def status_kb(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing")

def request(method, path, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return r.status, r.getheader("Retry-After"), payload
    finally:
        conn.close()

deadline = time.time() + 60
while True:
    try:
        if request("GET", "/ready", timeout=2)[0] == 200:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("bench: the server did not become ready within 60 s")
    time.sleep(0.1)

email, password = f"bench-{pid}@example.com", "bench memory password"
s, _, body = request("POST", "/api/auth/register",
                     {"name": "Bench Therapist", "email": email, "password": password, "confirmPassword": password})
if s != 201:
    sys.exit(f"bench: register answered {s}: {body}")
start_rss = status_kb("VmRSS")

samples, stop = [], threading.Event()
def sampler():
    while not stop.is_set():
        samples.append((time.monotonic(), status_kb("VmRSS")))
        time.sleep(0.005)
threading.Thread(target=sampler, daemon=True).start()

results, barrier = [None] * logins, threading.Barrier(logins + 1)
def login(i):
    barrier.wait()
    try:
        results[i] = request("POST", "/api/auth/login", {"email": email, "password": password})
    except OSError as e:
        results[i] = (f"error: {e}", None, None)
threads = [threading.Thread(target=login, args=(i,)) for i in range(logins)]
for t in threads:
    t.start()
barrier.wait()
t0 = time.monotonic()
for t in threads:
    t.join()
wall = time.monotonic() - t0
burst_peak_rss = max(kb for _, kb in samples)

time.sleep(idle_secs)
stop.set()
idle_rss, hwm = status_kb("VmRSS"), status_kb("VmHWM")

counts = {}
for status, retry_after, payload in results:
    key = str(status)
    if status == 503:
        code = (payload or {}).get("code")
        key = f"503 {code}" + ("" if retry_after else " (no Retry-After!)")
    counts[key] = counts.get(key, 0) + 1
mb = lambda kb: kb / 1024
print(f"logins: {logins} concurrent, burst wall time {wall:.2f} s")
print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
print(f"rss before burst: {mb(start_rss):.1f} MB")
print(f"peak rss (VmHWM): {mb(hwm):.1f} MB (highest sample {mb(burst_peak_rss):.1f} MB)")
print(f"idle rss after {idle_secs:g} s: {mb(idle_rss):.1f} MB")
failed = []
if mb(hwm) >= max_peak_mb:
    failed.append(f"peak {mb(hwm):.1f} MB >= {max_peak_mb:g} MB")
if mb(idle_rss) >= max_idle_mb:
    failed.append(f"idle {mb(idle_rss):.1f} MB >= {max_idle_mb:g} MB")
if counts.get("200", 0) == 0:
    failed.append("no login succeeded")
if any(k.startswith("500") or k.startswith("error") or "no Retry-After" in k for k in counts):
    failed.append("unexpected answers")
if failed:
    print("FAIL: " + "; ".join(failed))
    sys.exit(1)
print(f"OK: peak < {max_peak_mb:g} MB and idle < {max_idle_mb:g} MB")
PY
rc=$?
set -e
if [ "$rc" -ne 0 ] && [ -s "$work/server.log" ]; then
  echo "--- server log (last 20 lines) ---" >&2
  tail -n 20 "$work/server.log" >&2
fi
exit "$rc"
