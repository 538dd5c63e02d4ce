#!/usr/bin/env bash
# The capacity plan's load, measured against the loopback deployment (scripts/stack.sh):
#   1. brings the stack up (three instances, a worker, NGINX on 127.0.0.1:8080);
#   2. seeds a practice set: 20 therapists, their clients and a year of bookings (`dhara seed`;
#      a second run adds nothing);
#   3. runs the artillery scenarios (artillery pinned below, installed with npm under
#      ~/.cache/dhara) against NGINX: read-heavy (70 %), write-heavy (20 %), spike (10 %), each
#      with its `ensure` thresholds from the plan's SLO table;
#   4. prints per endpoint p50/p95/p99, requests/s and error counts, and each process's peak RSS.
# DHARA_LOAD_SCALE (default 1) multiplies every phase's duration (0.2: a 1-minute smoke run).
# Reports: target/load/<scenario>.json. Exit status: 0 when every scenario met its thresholds.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/load"
mkdir -p "$out"
artillery_version="2.0.34"
tools="$HOME/.cache/dhara/artillery-$artillery_version"
scale="${DHARA_LOAD_SCALE:-1}"
target="http://127.0.0.1:${DHARA_STACK_PORT:-8080}"

log() { printf '[load] %s\n' "$*" >&2; }

if ! command -v npm >/dev/null 2>&1; then
  log "installing nodejs and npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x "$tools/node_modules/.bin/artillery" ]; then
  log "installing artillery $artillery_version"
  # Artillery pulls in Playwright, whose browsers (downloaded from a CDN) the HTTP scenarios
  # never use.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund --prefix "$tools" \
    "artillery@$artillery_version" >/dev/null
fi

# Every virtual user comes from 127.0.0.1: per-address sign-in limits would refuse most of them.
bash "$root/scripts/stack.sh" down
DHARA_STACK_RATE_LIMITS=off bash "$root/scripts/stack.sh" up
(
  set -a
  # shellcheck disable=SC1091
  . "$root/target/stack/env"
  set +a
  export DHARA_ENV=production DHARA_CONFIG_DIR="$root/config"
  log "seeding 20 therapists with a year of bookings (once)"
  "$root/target/release/dhara" seed --therapists 20 --months 12
)

# The scenario's phases with their durations scaled (artillery --overrides replaces the list).
phases() {
  python3 - "$1" "$scale" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
scale = float(sys.argv[2])
block = text.split("phases:", 1)[1]
phases, current = [], None
for line in block.splitlines()[1:]:
    if not line.startswith("    "):
        break
    m = re.match(r"\s+-?\s*(\w+):\s*(\S+)", line)
    if not m:
        continue
    if line.strip().startswith("-"):
        current = {}
        phases.append(current)
    key, value = m.group(1), m.group(2)
    current[key] = max(1, round(float(value) * scale)) if key == "duration" else int(value)
print(json.dumps({"config": {"phases": phases}}))
EOF
}

status=0
for scenario in read-heavy write-heavy spike; do
  log "running $scenario (durations x$scale) against $target"
  if ! "$tools/node_modules/.bin/artillery" run --quiet --target "$target" \
    --overrides "$(phases "$root/artillery/$scenario.yml")" \
    --output "$out/$scenario.json" "$root/artillery/$scenario.yml" >"$out/$scenario.log" 2>&1; then
    log "$scenario did not meet its thresholds (see $out/$scenario.log)"
    status=1
  fi
done

python3 - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]
for name in ["read-heavy", "write-heavy", "spike"]:
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        continue
    agg = json.load(open(path))["aggregate"]
    counters, summaries, rates = agg.get("counters", {}), agg.get("summaries", {}), agg.get("rates", {})
    codes = {k.split(".")[-1]: v for k, v in counters.items() if k.startswith("http.codes.")}
    errors = {k[len("errors."):]: v for k, v in counters.items() if k.startswith("errors.")}
    print(f"\n== {name}: {counters.get('http.requests', 0)} requests, "
          f"{rates.get('http.request_rate', 0)} req/s, codes {codes}, errors {errors or 'none'}")
    print(f"   {'endpoint':44} {'count':>7} {'p50':>8} {'p95':>8} {'p99':>8}  (ms)")
    prefix = "plugins.metrics-by-endpoint.response_time."
    for key, s in sorted(summaries.items()):
        if key.startswith(prefix):
            print(f"   {key[len(prefix):]:44} {s.get('count', 0):>7} {s.get('median', 0):>8} "
                  f"{s.get('p95', 0):>8} {s.get('p99', 0):>8}")
EOF

echo
echo "peak resident memory (VmHWM):"
for pidfile in "$root"/target/stack/*.pid; do
  pid="$(cat "$pidfile")"
  [ -r "/proc/$pid/status" ] && printf '  %-10s %s\n' "$(basename "$pidfile" .pid)" \
    "$(awk '/VmHWM/ { print $2 " " $3 }' "/proc/$pid/status")"
done
exit $status
