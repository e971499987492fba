#!/usr/bin/env bash
# A rolling restart under load with a dead HTTP/2 client on every replica: two quickstart
# replicas (release build) behind HAProxy (`option httpchk GET /readyz`, `inter 200 fall 1
# rise 2`, no retries), keep-alive load on `/` with wrk, and ROUNDS restarts (4), one
# replica at a time. Before each SIGTERM an HTTP/2 client that never reads
# (frozen_h2.py) holds a connection to the replica. Prints how long each replica took to
# exit after SIGTERM (the drain delay is DRAIN_DELAY_MS, 2000; the deadline 20000) and how
# many requests failed.
#
# Needs (Debian): haproxy wrk python3. Everything listens on loopback and stops by itself.
#
#   bash benches/rolling_restart/run.sh
#   BIN=path/to/an/older/quickstart ROUNDS=2 bash benches/rolling_restart/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/rolling_restart
ROUNDS=${ROUNDS:-4}
DRAIN_DELAY_MS=${DRAIN_DELAY_MS:-2000}

# BIN: another build of the quickstart to compare with (an older commit's, say).
bin=${BIN:-target/release/examples/quickstart}
[ -n "${BIN:-}" ] || cargo build --release -q -p quickstart --example quickstart

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ports=(3201 3202)
cat >"$work/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    retries 0
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend app
    bind 127.0.0.1:3200
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    server r0 127.0.0.1:${ports[0]} check inter 200 fall 1 rise 2
    server r1 127.0.0.1:${ports[1]} check inter 200 fall 1 rise 2
CFG

replica=()
start() { # index
    ADDR="127.0.0.1:${ports[$1]}" STARTUP_MS=200 DRAIN_DELAY_MS=$DRAIN_DELAY_MS \
        SHUTDOWN_TIMEOUT_MS=20000 RUST_LOG=warn "$bin" >>"$work/replica$1.log" 2>&1 &
    replica[$1]=$!
    pids+=($!)
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; }
wait_ready() {
    for _ in $(seq 1 300); do ready "$1" && return 0; sleep 0.1; done
    echo "replica on $1 never became ready" >&2
    return 1
}

start 0
start 1
wait_ready "${ports[0]}"
wait_ready "${ports[1]}"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
sleep 1

run=$((ROUNDS * 8 + 4))
wrk -t 1 -c 4 -d "${run}s" -s benches/fleet_outage/count.lua http://127.0.0.1:3200/ >"$work/load.txt" 2>&1 &
load=$!
sleep 2
for round in $(seq 1 "$ROUNDS"); do
    i=$(((round - 1) % 2))
    python3 "$here/frozen_h2.py" "${ports[$i]}" >/dev/null &
    frozen=$!
    pids+=($frozen)
    sleep 0.5
    start_ns=$(date +%s%N)
    kill -TERM "${replica[$i]}"
    wait "${replica[$i]}" || true
    end_ns=$(date +%s%N)
    kill "$frozen" 2>/dev/null || true
    echo "round $round: replica $i exited $(python3 -c "print(f'{($end_ns - $start_ns) / 1e9:.2f}')") s after SIGTERM (drain delay $((DRAIN_DELAY_MS / 1000)) s)"
    start "$i"
    wait_ready "${ports[$i]}"
    sleep 2
done
wait $load
echo "load on /: $(grep requests= "$work/load.txt")"
