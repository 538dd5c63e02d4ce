#!/usr/bin/env bash
# Installs (idempotently) the pinned schema tools the OpenAPI tests run (tests/api/openapi.rs):
# schemathesis and openapi-spec-validator, into a Python >= 3.13 venv beside the dev database's,
# and prints the venv's bin/ (scripts/test.sh exports it as DHARA_SCHEMATHESIS_BIN).
set -euo pipefail
schemathesis_version="4.32.5"
validator_version="0.9.0"
venv="${DHARA_SCHEMATHESIS_VENV:-$HOME/.cache/dhara/venv-schemathesis-$schemathesis_version}"

log() { printf '[schemathesis] %s\n' "$*" >&2; }

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

installed() {
  "$venv/bin/python" - "$schemathesis_version" "$validator_version" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("schemathesis"), version("openapi-spec-validator")) == tuple(sys.argv[1:3]) else 1)
PY
}

if ! installed; then
  py="$(find_python313)" || { log "Python >= 3.13 not found (looked in ~/.pyenv/versions); set DHARA_PYTHON"; exit 1; }
  log "creating $venv with $py: schemathesis==$schemathesis_version openapi-spec-validator==$validator_version"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "schemathesis==$schemathesis_version" "openapi-spec-validator==$validator_version"
fi
echo "$venv/bin"
