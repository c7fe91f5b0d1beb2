#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what cargo does not (idempotent),
# then runs every test of the workspace with real nats-server instances.
# Extra arguments go to `cargo nextest run` (a test name filter, for instance).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started=$SECONDS
bin="$("$root/deploy/install-deps.sh")"
echo "test.sh: dependencies ready after $((SECONDS - started)) s" >&2
export PATH="$bin:$PATH"
cd "$root"
cargo nextest run --workspace --locked --no-fail-fast "$@"
