#!/usr/bin/env bash
# pgbench tpcb-like (scale 1) on one node vs the leader of three voters on loopback, and the
# followers' lag sampled from the leader's /status during the 8-client run.
set -u
BIN=${BIN:-target/release/bulwark}
B=${OUT:-/tmp/bulwark-cluster-bench}; rm -rf $B; mkdir -p $B
bench() { # label port [http port of the leader, to sample the followers' lag]
  local label=$1 port=$2 http=${3:-}
  pgbench -h 127.0.0.1 -p $port -U bulwark -i -s 1 -q bulwark > $B/init.log 2>&1 || { echo "init failed"; cat $B/init.log; }
  for c in 1 8; do
    if [ -n "$http" ] && [ $c = 8 ]; then
      ( for s in $(seq 1 14); do sleep 1; curl -s 127.0.0.1:$http/status | python3 -c '
import json,sys; d=json.load(sys.stdin); last=d["last_log_index"]
print(" ".join("node %d: %d" % (m["id"], last-(m["matched_index"] or 0)) for m in d["members"] if m["id"]!=d["node_id"]))' 2>/dev/null; done ) > $B/lag.log &
    fi
    out=$(pgbench -h 127.0.0.1 -p $port -U bulwark -c $c -T 15 -M prepared bulwark 2>&1)
    tps=$(echo "$out" | grep "^tps" | awk '{print $3}'); lat=$(echo "$out" | grep "^latency average" | awk '{print $4}')
    echo "$label | tpcb-like scale 1, $c clients, -M prepared -T 15 | $tps tps | avg latency $lat ms"
  done
}
# One node.
$BIN start --data-dir $B/single --pg-addr 127.0.0.1:56000 --http-addr 127.0.0.1:56100 --log-level error > $B/single.log 2>&1 &
P=$!; sleep 1
bench "1 node" 56000
kill $P; wait $P 2>/dev/null
# Three voters.
INIT="1=127.0.0.1:57001,2=127.0.0.1:57002,3=127.0.0.1:57003"
for i in 1 2 3; do
  $BIN start --data-dir $B/n$i --pg-addr 127.0.0.1:5600$i --http-addr 127.0.0.1:5610$i --node-id $i --peer-addr 127.0.0.1:5700$i --init-cluster $INIT --log-level error > $B/n$i.log 2>&1 &
done
for t in $(seq 1 100); do curl -s 127.0.0.1:56101/status | grep -q '"role":"leader"' && break; sleep 0.1; done
bench "3 voters" 56001 56101
sleep 1
echo "followers' lag during the 8-client run, entries behind the leader's last log index, sampled once a second:"
cat $B/lag.log
for i in 1 2 3; do curl -s 127.0.0.1:5610$i/status | python3 -c 'import json,sys; d=json.load(sys.stdin); print("node", d["node_id"], d["role"], "applied", d["applied_index"])'; done
pkill -f "$B/n"; wait 2>/dev/null
