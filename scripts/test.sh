#!/usr/bin/env bash
# Sets up the local dependencies and runs the whole test suite: formatting, lints, unit and
# integration tests. Integration tests use MONGODB_URI / REDIS_URL when set (a genuine replica
# set, for instance); otherwise the local dev server and redis-server started here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ -z "${MONGODB_URI:-}" ] || [ -z "${REDIS_URL+set}" ]; then
  bash scripts/services.sh
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets "$@"
