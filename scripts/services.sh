#!/usr/bin/env bash
# Installs (idempotently) and starts the local dependencies on loopback:
#   - the MongoDB-compatible dev server (mongoeco, in-memory) on $DHARA_DEV_MONGO_PORT (27017)
#   - redis-server on $DHARA_DEV_REDIS_PORT (6379)
# A dependency already answering on its port is reused. Source it or run it; it exits 0 when
# both answer. Logs and pid files: target/dev-services/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/target/dev-services"
mkdir -p "$state"
mongo_port="${DHARA_DEV_MONGO_PORT:-27017}"
redis_port="${DHARA_DEV_REDIS_PORT:-6379}"
mongoeco_version="4.11.0"
venv="${DHARA_VENV:-$HOME/.cache/dhara/venv-mongoeco-$mongoeco_version}"

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds name
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  log "$3 did not start on port $1; see $state/$3.log"
  tail -n 20 "$state/$3.log" >&2 || true
  return 1
}

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
# The deployment tests verify the systemd units.
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing ${need_apt[*]}: install them (apt-get install ${need_apt[*]}) or run as root"
    exit 1
  fi
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

find_python313() {
  local candidate
  for candidate in "${DHARA_PYTHON:-}" "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3 python3.13 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! "$venv/bin/python" -c "import mongoeco.wire, sys; sys.exit(0 if mongoeco.__version__ == '$mongoeco_version' else 1)" 2>/dev/null; then
  py="$(find_python313)" || { log "Python >= 3.13 not found (looked in ~/.pyenv/versions); set DHARA_PYTHON"; exit 1; }
  log "creating $venv with $py and installing mongoeco[wire]==$mongoeco_version"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "mongoeco[wire]==$mongoeco_version"
fi

if port_open "$mongo_port"; then
  log "MongoDB-compatible server already answering on 127.0.0.1:$mongo_port"
else
  log "starting mongoeco on 127.0.0.1:$mongo_port"
  nohup "$venv/bin/python" "$root/scripts/devdb/mongoeco_server.py" --port "$mongo_port" \
    >"$state/mongoeco.log" 2>&1 &
  echo $! >"$state/mongoeco.pid"
  wait_port "$mongo_port" 30 mongoeco
  # Self-test of the launcher's wire patches (about a second; writes only to its own database and
  # drops it). Only against a server started here, never a shared one found on the port. A failure
  # stops the server again, so the next run starts (and tests) a fresh one.
  if ! "$venv/bin/python" "$root/scripts/devdb/selftest.py" "mongodb://127.0.0.1:$mongo_port" \
    >"$state/mongoeco-selftest.log" 2>&1; then
    log "mongoeco launcher self-test failed (scripts/devdb/selftest.py):"
    cat "$state/mongoeco-selftest.log" >&2
    kill "$(cat "$state/mongoeco.pid")" 2>/dev/null || true
    exit 1
  fi
  log "mongoeco launcher self-test passed"
fi

if port_open "$redis_port"; then
  log "Redis already answering on 127.0.0.1:$redis_port"
else
  log "starting redis-server on 127.0.0.1:$redis_port"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize yes --pidfile "$state/redis.pid" --logfile "$state/redis.log" >/dev/null
  wait_port "$redis_port" 15 redis
fi
