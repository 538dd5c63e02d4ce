#!/usr/bin/env bash
# Sets up the local dependencies and runs the service with its embedded defaults
# (http://127.0.0.1:5000, database `dhara` on the dev server, Redis on 6379).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/services.sh
exec cargo run --release --bin dhara -- serve "$@"
