#!/usr/bin/env bash
# Runs Eddy locally: a Tansu broker, one Eddy node and a demo feeder.
#
#   ./scripts/run.sh            then, in another terminal, the psql line it prints
#
# The superuser is `eddy`. Its password is EDDY_PASSWORD when set, else one made on
# the first run and kept in .eddy/password (readable only by you); the script prints
# the exact psql command to connect.
# State lives in .eddy/ under the clone (broker: .eddy/broker/tansu.db, node:
# .eddy/data, logs: .eddy/logs), so a second run continues where the first stopped;
# `rm -rf .eddy` starts over. Ctrl-C stops the feeder, the node and the broker, in
# that order. Ports: KAFKA_PORT (default 9092) and PG_PORT (default 6875).
# Extra arguments go to the feeder (e.g. --count 1000, --rate 20).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/eddy-target}"
export PATH="$HOME/.cargo/bin:$PATH"
kafka_port="${KAFKA_PORT:-9092}"
pg_port="${PG_PORT:-6875}"
say() { echo "run: $*"; }

# EDDY_SKIP_SETUP=1 skips setup (and its build) when the binaries are known fresh.
[[ ${EDDY_SKIP_SETUP:-0} == 1 ]] || "$root/scripts/setup.sh"

state="$root/.eddy"
mkdir -p "$state/broker" "$state/data" "$state/logs"
if [[ -z ${EDDY_PASSWORD:-} ]]; then
    if [[ ! -s $state/password ]]; then
        (umask 077 && od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$state/password")
    fi
    EDDY_PASSWORD="$(cat "$state/password")"
fi
export EDDY_PASSWORD

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$kafka_port" "$pg_port"; do
    if port_open "$port"; then
        say "port $port on 127.0.0.1 is already in use; stop whatever holds it (or set KAFKA_PORT / PG_PORT)" >&2
        exit 1
    fi
done

tansu_pid="" eddy_pid="" feed_pid=""
stop_pid() { # pid name: SIGTERM, wait up to 20 s, then SIGKILL
    local pid=$1 name=$2
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "$name did not stop in 20 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    trap - INT TERM EXIT
    stop_pid "$feed_pid" demo-feed
    stop_pid "$eddy_pid" eddy
    stop_pid "$tansu_pid" tansu
    wait 2>/dev/null || true
    say "stopped; state kept in $state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- broker: Tansu, sqlite engine (durable), loopback only --------------------------
listener="tcp://127.0.0.1:$kafka_port"
say "starting tansu on 127.0.0.1:$kafka_port (sqlite engine: $state/broker/tansu.db; log: $state/logs/tansu.log)"
(cd "$state/broker" && exec tansu broker \
    --listener-url "$listener" --advertised-listener-url "$listener" \
    --storage-engine sqlite://tansu.db) >>"$state/logs/tansu.log" 2>&1 &
tansu_pid=$!
for _ in $(seq 600); do
    port_open "$kafka_port" && break
    kill -0 "$tansu_pid" 2>/dev/null || { say "tansu exited; see $state/logs/tansu.log" >&2; tail -20 "$state/logs/tansu.log" >&2; exit 1; }
    sleep 0.1
done
port_open "$kafka_port" || { say "tansu not listening after 60 s" >&2; exit 1; }

# --- one Eddy node ------------------------------------------------------------------
eddy_out="$state/logs/eddy.stdout.log"
: >"$eddy_out"
say "starting eddy (data: $state/data; log: $state/logs/eddy.log)"
RUST_LOG="${RUST_LOG:-info}" "$CARGO_TARGET_DIR/release/eddy" serve \
    --pg-listen "127.0.0.1:$pg_port" --data-dir "$state/data" \
    --brokers "127.0.0.1:$kafka_port" --node-id n1 --cluster demo \
    --partitions 4 --standbys 0 >"$eddy_out" 2>>"$state/logs/eddy.log" &
eddy_pid=$!
for _ in $(seq 1200); do
    grep -q '^eddy ready' "$eddy_out" && break
    kill -0 "$eddy_pid" 2>/dev/null || { say "eddy exited; see $state/logs/eddy.log" >&2; tail -20 "$state/logs/eddy.log" >&2; exit 1; }
    sleep 0.1
done
grep -q '^eddy ready' "$eddy_out" || { say "eddy not ready after 120 s; see $state/logs/eddy.log" >&2; exit 1; }
say "$(grep -m1 '^eddy ready' "$eddy_out")"

# --- demo feeder: topics, source, view, then a trickle of orders ----------------------
say "starting demo-feed (creates topics orders + customers, sources, view revenue)"
"$CARGO_TARGET_DIR/release/demo-feed" --brokers "127.0.0.1:$kafka_port" \
    --pg "host=127.0.0.1 port=$pg_port user=eddy password=$EDDY_PASSWORD dbname=eddy" "$@" &
feed_pid=$!

cat <<EOF

  Eddy is running. Connect with:

      psql "postgresql://eddy:$EDDY_PASSWORD@127.0.0.1:$pg_port/eddy"

  and try:
      SHOW SOURCES;
      SHOW MATERIALIZED VIEWS;
      SELECT * FROM revenue ORDER BY total DESC LIMIT 5;
      SELECT * FROM revenue WHERE customer = 'alice';

  Ctrl-C stops everything. Logs: $state/logs/

EOF

# Until Ctrl-C, or until a component exits (then say which, and stop the rest).
while :; do
    wait -n 2>/dev/null || true
    kill -0 "$tansu_pid" 2>/dev/null || { say "tansu exited; see $state/logs/tansu.log" >&2; exit 1; }
    kill -0 "$eddy_pid" 2>/dev/null || { say "eddy exited; see $state/logs/eddy.log" >&2; exit 1; }
    if [[ -n $feed_pid ]] && ! kill -0 "$feed_pid" 2>/dev/null; then
        rc=0; wait "$feed_pid" || rc=$?
        feed_pid=""
        if [[ $rc != 0 ]]; then say "demo-feed failed (status $rc)" >&2; exit "$rc"; fi
        say "demo-feed finished; eddy keeps serving (Ctrl-C to stop)"
    fi
done
