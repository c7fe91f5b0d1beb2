#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what cargo does not (idempotent),
# then runs every test of the workspace with real nats-server instances.
# Extra arguments go to `cargo nextest run` (a test name filter, for instance).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$root/deploy/install-deps.sh")"
export PATH="$bin:$PATH"
cd "$root"
cargo nextest run --workspace --locked --no-fail-fast "$@"
