#!/usr/bin/env bash
# The one test command: setup (packages, Tansu, the client matrix, build), then every
# test of the workspace in release mode. End-to-end tests start their own Tansu brokers
# and `eddy serve` nodes on free loopback ports; extra arguments go to `cargo test`.
#
#   ./scripts/test.sh
#   ./scripts/test.sh -p eddy-tests --test recovery     # one end-to-end file
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy-target}"
export PATH="$HOME/.cargo/bin:$PATH"

"$root/scripts/setup.sh" --psql --clients

cd "$root"
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--workspace)
echo "test: cargo test --release ${args[*]}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --release "${args[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# cargo's last summary is its (empty) doc-test run; close with the real totals.
read -r passed failed < <(grep -E '^test result:' "$log" \
    | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' \
    | awk '{p += $1; f += $2} END {print p + 0, f + 0}')
echo
echo "total: $passed passed, $failed failed"
exit "$status"
