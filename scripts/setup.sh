#!/usr/bin/env bash
# Installs what Eddy needs on a fresh Debian machine, then builds the workspace.
# Idempotent and non-interactive: each step checks first and says what it does.
#
#   scripts/setup.sh            libclang-dev, Tansu 0.6.0, cargo build --release --workspace
#   scripts/setup.sh --bench    also PostgreSQL 15 server, psql and pgbench (benchmark)
#   scripts/setup.sh --psql     also psql and a PostgreSQL 15 server (the end-to-end tests
#                               drive psql and check answers against PostgreSQL)
#   scripts/setup.sh --no-build skip the cargo build
#
# CARGO_TARGET_DIR defaults to ~/.cache/eddy-target (outside the clone), so repeated
# runs and CI on one machine reuse the build. Nothing is exported persistently.
set -euo pipefail

TANSU_VERSION=0.6.0
want_psql=0
want_build=1
for arg in "$@"; do
    case "$arg" in
        --bench) want_psql=1 ;;
        --psql) want_psql=1 ;;
        --no-build) want_build=0 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "setup: unknown argument $arg" >&2; exit 2 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy-target}"
export PATH="$HOME/.cargo/bin:$PATH"
say() { echo "setup: $*"; }

# --- Debian packages -------------------------------------------------------------
missing=()
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
if [[ $want_psql == 1 ]]; then
    # postgresql (15 on Debian 12) brings postgres, initdb, pg_ctl, pgbench and psql.
    [[ -x /usr/lib/postgresql/15/bin/pgbench ]] || missing+=(postgresql)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
fi
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    say "installing ${missing[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    say "Debian packages already present: libclang-dev$([[ $want_psql == 1 ]] && echo ', psql, postgresql 15, pgbench')"
fi

# --- Tansu, the Kafka-protocol broker for development and tests (DESIGN §6) -------
# `tansu --version` prints "tansu 0.6.0".
if tansu --version 2>/dev/null | grep -qx "tansu $TANSU_VERSION"; then
    say "tansu $TANSU_VERSION present at $(command -v tansu)"
else
    say "installing tansu $TANSU_VERSION from crates.io (about 9 minutes on 2 cores)"
    # In cargo's own temporary target dir, not the workspace's: a concurrent
    # workspace build does not block on it, and nothing is left behind.
    env -u CARGO_TARGET_DIR cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql
    tansu --version
fi

# --- The workspace ----------------------------------------------------------------
if [[ $want_build == 1 ]]; then
    say "cargo build --release --workspace (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$root" && cargo build --release --workspace)
    say "built $CARGO_TARGET_DIR/release/eddy"
fi
