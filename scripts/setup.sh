#!/usr/bin/env bash
# Installs what Eddy needs on a fresh Debian machine, then builds the workspace.
# Idempotent and non-interactive: each step checks first and says what it does.
#
#   scripts/setup.sh            libclang-dev, Tansu 0.6.0, cargo build --release --workspace
#   scripts/setup.sh --bench    also PostgreSQL 15 server, psql and pgbench (benchmark)
#   scripts/setup.sh --psql     also psql and a PostgreSQL 15 server (the end-to-end tests
#                               drive psql and check answers against PostgreSQL)
#   scripts/setup.sh --clients  also the client matrix of tests/tests/clients.rs, pinned:
#                               a Python venv (psycopg2, psycopg 3, asyncpg, SQLAlchemy 2,
#                               pandas), node-postgres, and pgjdbc with a Java 17 JDK;
#                               under ${EDDY_CLIENTS:-~/.cache/eddy-clients}
#   scripts/setup.sh --no-build skip the cargo build
#
# CARGO_TARGET_DIR defaults to ~/.cache/eddy-target (outside the clone), so repeated
# runs and CI on one machine reuse the build. Nothing is exported persistently.
set -euo pipefail

TANSU_VERSION=0.6.0
# The client matrix, pinned: a new version is a deliberate change here.
PYTHON_CLIENTS=(psycopg2-binary==2.9.13 "psycopg[binary]==3.3.9" SQLAlchemy==2.1.9
    pandas==3.1.1 asyncpg==0.32.0)
NODE_PG=pg@8.23.1
want_psql=0
want_clients=0
want_build=1
for arg in "$@"; do
    case "$arg" in
        --bench) want_psql=1 ;;
        --psql) want_psql=1 ;;
        --clients) want_clients=1 ;;
        --no-build) want_build=0 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
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
    # `script` gives psql a terminal, for the test of its tab completion.
    command -v script >/dev/null 2>&1 || missing+=(bsdutils)
fi
if [[ $want_clients == 1 ]]; then
    # pgjdbc from Debian (Maven Central is out of reach); a JDK runs Jdbc.java as a
    # single-file program. npm for node-postgres, venv for the Python clients.
    [[ -f /usr/share/java/postgresql.jar ]] || missing+=(libpostgresql-jdbc-java)
    command -v java >/dev/null 2>&1 || missing+=(default-jdk-headless)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    if ! command -v python3 >/dev/null 2>&1; then
        missing+=(python3 python3-venv)
    elif [[ $(command -v python3) == /usr/bin/python3 ]] \
        && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv) # Debian's python3 has venv's pip bootstrap split out
    fi
fi
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    say "installing ${missing[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    say "Debian packages already present: libclang-dev$([[ $want_psql == 1 ]] && echo ', psql, postgresql 15, pgbench')$([[ $want_clients == 1 ]] && echo ', pgjdbc, java, npm')"
fi

# --- The client matrix (tests/tests/clients.rs) -------------------------------------
if [[ $want_clients == 1 ]]; then
    clients="${EDDY_CLIENTS:-$HOME/.cache/eddy-clients}"
    venv="$clients/venv"
    # Each pin `name==version` (extras dropped) is what the venv must report.
    pins_present() {
        "$venv/bin/python" - "${PYTHON_CLIENTS[@]}" <<'PY' 2>/dev/null
import re, sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = re.sub(r"\[.*\]", "", pin).split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
    }
    if pins_present; then
        say "Python clients present in $venv"
    else
        say "installing ${PYTHON_CLIENTS[*]} into $venv"
        if [[ ! -x $venv/bin/python ]]; then
            # An interpreter without ensurepip (a python3 built without it) makes a
            # bare venv, and its own pip installs pip into it.
            python3 -m venv "$venv" 2>/dev/null || {
                rm -rf "$venv"
                python3 -m venv --without-pip "$venv"
                python3 -m pip --python "$venv/bin/python" install -q pip
            }
        fi
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "${PYTHON_CLIENTS[@]}"
        pins_present || { echo "setup: the venv does not hold ${PYTHON_CLIENTS[*]}" >&2; exit 1; }
    fi
    node_dir="$clients/node"
    want_pg="${NODE_PG#pg@}"
    have_pg="$(node -p "require('$node_dir/node_modules/pg/package.json').version" 2>/dev/null || true)"
    if [[ $have_pg == "$want_pg" ]]; then
        say "node-postgres $want_pg present in $node_dir"
    else
        say "installing node-postgres $NODE_PG into $node_dir"
        mkdir -p "$node_dir"
        npm install --prefix "$node_dir" --no-audit --no-fund --silent --save-exact "$NODE_PG"
    fi
    java_major="$(java -XshowSettings:properties -version 2>&1 \
        | sed -n 's/^ *java.specification.version = //p')"
    if [[ ${java_major:-0} -lt 17 ]]; then
        echo "setup: java $java_major found; the JDBC client needs Java 17 or later" >&2
        exit 1
    fi
    say "pgjdbc at /usr/share/java/postgresql.jar, java $java_major"
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
