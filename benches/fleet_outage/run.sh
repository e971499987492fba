#!/usr/bin/env bash
# An outage of the database, one replica's or everyone's, under load: three replicas of
# `postgres_redis` (release build) behind HAProxy (`option httpchk GET /readyz`,
# `inter 200 fall 1 rise 2`, no retries), each reaching PostgreSQL through a TCP forwarder
# of its own (forward.py), so that the database can be cut for one replica or for all.
# Keep-alive load on `/` (needs no database) and `/time` (queries PostgreSQL) at once,
# with wrk; an outage of OUTAGE seconds (8) in the middle of each run.
#
# Scenarios, one run each: `one` (one replica loses the database), `all` (every replica
# does), `rollout` (a fourth replica of a release with a wrong database name joins the
# fleet and the balancer while the others serve). With FLEET=0 the replicas get no fleet
# (no PEERS), as before the fleet existed.
#
# Needs (Debian): haproxy wrk postgresql redis-server python3, and root (PostgreSQL runs
# as the postgres user). Everything listens on loopback and stops by itself.
#
#   bash benches/fleet_outage/run.sh            # with the fleet
#   FLEET=0 bash benches/fleet_outage/run.sh    # without
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/fleet_outage
OUTAGE=${OUTAGE:-8}
FLEET=${FLEET:-1}
RUN=${RUN:-24}

cargo build --release -q -p examples --example postgres_redis
bin=target/release/examples/postgres_redis

work=$(mktemp -d)
chmod 1777 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -n "${pg:-}" ] && runuser -u postgres -- "$pg/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

pg=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir "$work/pg" && chown postgres "$work/pg"
runuser -u postgres -- "$pg/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$pg/pg_ctl" -D "$work/pg" -o "-p 55432 -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" -w start >/dev/null
redis-server --port 56379 --bind 127.0.0.1 --save '' --daemonize no >/dev/null &
pids+=($!)

ports=(3101 3102 3103 3104)
fwd=(55441 55442 55443 55444)
fwd_pids=()
for i in 0 1 2 3; do
    python3 "$here/forward.py" "${fwd[$i]}" 55432 &
    fwd_pids+=($!)
    pids+=($!)
done

cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    retries 0
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend app
    bind 127.0.0.1:3100
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
EOF
for i in 0 1 2 3; do
    echo "    server r$i 127.0.0.1:${ports[$i]} check inter 200 fall 1 rise 2" >>"$work/haproxy.cfg"
done

peers() { # the fleet of replicas 0..$1
    local list=""
    for i in $(seq 0 "$1"); do list="$list${list:+,}127.0.0.1:${ports[$i]}"; done
    echo "$list"
}

replica_pids=()
start_replica() { # index, database name, fleet size - 1
    local env=(ADDR="127.0.0.1:${ports[$1]}" DATABASE_URL="host=127.0.0.1 port=${fwd[$1]} user=postgres dbname=$2"
        REDIS_URL=redis://127.0.0.1:56379 RUST_LOG=warn DRAIN_DELAY_MS=0 STARTUP_TIMEOUT_MS=60000)
    [ "$FLEET" = 1 ] && env+=(PEERS="$(peers "$3")")
    env -u PEERS "${env[@]}" "$bin" >"$work/replica$1.log" 2>&1 &
    replica_pids+=($!)
    pids+=($!)
}

ready() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz" || true; }

wait_ready() {
    for _ in $(seq 1 300); do
        local all=1
        for i in "$@"; do [ "$(ready "${ports[$i]}")" = 200 ] || all=0; done
        [ $all = 1 ] && return 0
        sleep 0.1
    done
    echo "replicas $* never became ready" >&2; for f in "$work"/replica*.log; do tail -n 5 "$f" >&2; done
    return 1
}

# Seconds from now until /time through the balancer answers 200 again.
time_to_answer() {
    local start end
    start=$(date +%s.%N)
    for _ in $(seq 1 1000); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:3100/time)" = 200 ] && break
        sleep 0.02
    done
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}

load() { # path, output file
    wrk -t 1 -c 4 -d "${RUN}s" -s "$here/count.lua" "http://127.0.0.1:3100$1" >"$2" 2>&1
}

scenario() { # name, forwarder indexes to cut
    local name=$1
    shift
    load / "$work/root.txt" &
    local l1=$!
    load /time "$work/time.txt" &
    local l2=$!
    sleep 6
    for i in "$@"; do kill -USR1 "${fwd_pids[$i]}"; done
    sleep "$OUTAGE"
    for i in "$@"; do kill -USR2 "${fwd_pids[$i]}"; done
    local back
    back=$(time_to_answer)
    wait $l1 $l2
    echo "$name (FLEET=$FLEET, outage ${OUTAGE} s): /time answered again ${back} s after the database came back"
    echo "  /      $(grep requests= "$work/root.txt")"
    echo "  /time  $(grep requests= "$work/time.txt")"
}

fresh_fleet() {
    for pid in "${replica_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    replica_pids=()
    sleep 0.5
    for i in 0 1 2; do start_replica $i postgres 2; done
    wait_ready 0 1 2
}

haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)

fresh_fleet
sleep 1
scenario one 0
fresh_fleet
sleep 1
scenario all 0 1 2

# A rollout to a release that cannot reach its database: the new replica must stay out.
fresh_fleet
sleep 1
load / "$work/root.txt" &
l1=$!
load /time "$work/time.txt" &
l2=$!
sleep 2
start_replica 3 no_such_database 3
up=0
for _ in $(seq 1 $(((RUN - 4) * 10))); do
    [ "$(ready 3101)" = 200 ] && [ "$(ready ${ports[3]})" = 200 ] && up=$((up + 1))
    sleep 0.1
done
wait $l1 $l2
echo "rollout (FLEET=$FLEET): the broken replica answered readiness 200 in $up of $(((RUN - 4) * 10)) looks"
echo "  /      $(grep requests= "$work/root.txt")"
echo "  /time  $(grep requests= "$work/time.txt")"
