#!/usr/bin/env bash
# Before and after a change: pgbench against two bulwark binaries on the same machine, one after the other.
set -u
# Usage: BEFORE=path/to/bulwark AFTER=path/to/bulwark OUT=/tmp/ab bash crates/bench/scripts/ab.sh
BEFORE=${BEFORE:?the bulwark binary before the change}; AFTER=${AFTER:?the bulwark binary after it}; OUT=${OUT:-/tmp/bulwark-ab}
PORT=55433
run() {
  local bin=$1 label=$2; local dir=$OUT/r-$2
  rm -rf $dir; mkdir -p $dir
  $bin start --data-dir $dir/data --pg-addr 127.0.0.1:$PORT --http-addr 127.0.0.1:59433 --log-level error > $dir/log 2>&1 &
  local pid=$!
  for i in $(seq 1 100); do psql -h 127.0.0.1 -p $PORT -U bulwark -Atc "select 1" bulwark >/dev/null 2>&1 && break; sleep 0.1; done
  pgbench -h 127.0.0.1 -p $PORT -U bulwark -i -s 10 -q bulwark > /dev/null 2>&1
  psql -h 127.0.0.1 -p $PORT -U bulwark -qc "CREATE TABLE ins (id BIGSERIAL PRIMARY KEY, v INT, note TEXT)" bulwark
  echo "INSERT INTO ins (v, note) VALUES (1, 'x');" > $dir/ins.sql
  for args in "-S -c 8" "-c 1" "-c 8" "-n -f $dir/ins.sql -c 1" "-n -f $dir/ins.sql -c 16"; do
    out=$(pgbench -h 127.0.0.1 -p $PORT -U bulwark $args -T 15 -M prepared bulwark 2>&1)
    tps=$(echo "$out" | grep "^tps" | awk '{print $3}')
    lat=$(echo "$out" | grep "^latency average" | awk '{print $4}')
    echo "$label | pgbench ${args/$dir\//} -M prepared -T 15 | $tps tps | avg latency $lat ms"
  done
  kill $pid; wait $pid 2>/dev/null
}
# Two rounds in opposite orders, so a drift in the machine shows as a spread, not a change.
run "$BEFORE" before
run "$AFTER" after
run "$AFTER" after
run "$BEFORE" before
