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
if [ -z "${MONGODB_URI:-}" ]; then
  # The dev server fails a transaction's commit when anything at all was written meanwhile
  # (a replica set conflicts per document), so tests that run side by side would keep
  # aborting each other's transactions. Against it, run one test at a time.
  export RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}"
fi
# The OpenAPI tests run schemathesis and openapi-spec-validator (pinned) from their own venv.
DHARA_SCHEMATHESIS_BIN="$(bash scripts/schemathesis.sh)"
export DHARA_SCHEMATHESIS_BIN
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets "$@"
