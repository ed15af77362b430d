#!/usr/bin/env bash
# The one test command: setup (packages, Tansu, build), then every test of the
# workspace in release mode. End-to-end tests start their own Tansu brokers and
# `eddy serve` nodes on free loopback ports; extra arguments go to `cargo test`.
#
#   ./scripts/test.sh
#   ./scripts/test.sh -p eddy-tests --test recovery     # one end-to-end file
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy-target}"
export PATH="$HOME/.cargo/bin:$PATH"

"$root/scripts/setup.sh" --psql

cd "$root"
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--workspace)
echo "test: cargo test --release ${args[*]}"
exec cargo test --release "${args[@]}"
