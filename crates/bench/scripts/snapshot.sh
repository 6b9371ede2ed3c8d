#!/usr/bin/env bash
# Time to bring a new node up from a checkpoint image of a database of SIZE_MB (default
# 1024) MiB: a one-voter cluster is loaded with rows of 400-byte values (under the
# 480-byte inline limit; a row takes about 800 bytes of data file with its key, version
# and the B-tree's free space), takes a checkpoint that
# purges its log (`bulwark cluster snapshot`), then a second node starts with --join and
# is timed until the leader reports it a voter that holds the whole log. Release binary.
set -u
BIN=${BIN:-target/release/bulwark}
SIZE_MB=${SIZE_MB:-1024}
B=${OUT:-/tmp/bulwark-snapshot-bench}; rm -rf $B; mkdir -p $B
ROWS_PER_TXN=${ROWS_PER_TXN:-100000}           # ~45 MiB per transaction, under the 63 MiB replicated limit
TXNS=$(( (SIZE_MB * 1048576 / 800 + ROWS_PER_TXN - 1) / ROWS_PER_TXN ))
now_ms() { date +%s%3N; }
$BIN start --data-dir $B/n1 --pg-addr 127.0.0.1:58001 --http-addr 127.0.0.1:58101 --node-id 1 \
  --peer-addr 127.0.0.1:58201 --init-cluster 1=127.0.0.1:58201 --raft-log-keep 10 --log-level ${N1_LOG:-error} > $B/n1.log 2>&1 &
N1=$!
for t in $(seq 1 100); do curl -s 127.0.0.1:58101/status | grep -q '"role":"leader"' && break; sleep 0.1; done
PSQL="psql -X -q -h 127.0.0.1 -p 58001 -U bulwark bulwark"
$PSQL -c "CREATE TABLE t (id BIGINT PRIMARY KEY, pad TEXT)"
start=$(now_ms)
for i in $(seq 0 $(( TXNS - 1 ))); do
  $PSQL -c "INSERT INTO t SELECT g, repeat('x', 400) FROM generate_series($(( i * ROWS_PER_TXN + 1 )), $(( (i + 1) * ROWS_PER_TXN ))) g" || exit 1
done
echo "loaded $(( TXNS * ROWS_PER_TXN )) rows in $(( $(now_ms) - start )) ms"
$BIN cluster snapshot --http 127.0.0.1:58101
ls -l $B/n1/data.db | awk '{printf "data.db: %.0f MiB\n", $5/1048576}'
# A writer commits on the leader through the join (WRITE_S seconds, 200 inserts a second):
# its slowest commit shows whether the leader pauses while it copies the image. (Both
# nodes share this machine's disk: the new node's fsync of the saved image slows the
# leader's log fsyncs too.)
WRITE_S=${WRITE_S:-30}
$PSQL -c "CREATE TABLE w (id BIGSERIAL PRIMARY KEY, v INT)"
echo "INSERT INTO w (v) VALUES (1);" > $B/w.sql
(cd $B && pgbench -n -h 127.0.0.1 -p 58001 -U bulwark -c 1 -R 200 -T $WRITE_S -l --log-prefix=w -f $B/w.sql bulwark > $B/w.out 2>&1) &
W=$!
start=$(now_ms)
$BIN start --data-dir $B/n2 --pg-addr 127.0.0.1:58002 --http-addr 127.0.0.1:58102 --node-id 2 \
  --peer-addr 127.0.0.1:58202 --join 127.0.0.1:58101 --log-level ${N2_LOG:-error} > $B/n2.log 2>&1 &
saved=""
while true; do
  [ -z "$saved" ] && grep -q restarting $B/n2.log 2>/dev/null && saved=$(( $(now_ms) - start ))
  s=$(curl -s -m 5 127.0.0.1:58101/status)
  if echo "$s" | python3 -c '
import json,sys; d=json.load(sys.stdin)
m=[m for m in d["members"] if m["id"]==2]
sys.exit(0 if m and m[0]["voter"] and m[0]["matched_index"] and m[0]["matched_index"]>=d["last_log_index"] else 1)'; then break; fi
  if [ $(( $(now_ms) - start )) -gt 600000 ] || ! kill -0 $N1 2>/dev/null; then echo "node 2 did not catch up (or node 1 is gone)"; pkill -f "$B/n"; exit 1; fi
  sleep 0.05
done
echo "new node up from a checkpoint image: $(( $(now_ms) - start )) ms (start to voter holding the whole log; image received and saved after ${saved:-?} ms)"
grep -h "restarting" $B/n2.log
LAST=$(( TXNS * ROWS_PER_TXN ))
echo "rows 1, $(( LAST / 2 )), $LAST on node 2: $(psql -X -At -h 127.0.0.1 -p 58002 -U bulwark bulwark -c "SET bulwark.read_consistency = 'stale'; SELECT id, length(pad) FROM t WHERE id IN (1, $(( LAST / 2 )), $LAST) ORDER BY id" | tr '\n' ' ')"
wait $W
echo "writer on the leader during the join: $(grep -E '^tps' $B/w.out | awk '{print $3}') tps; slowest commit $(cat $B/w.*[0-9] | awk 'BEGIN {m=0} $3>m {m=$3} END {printf "%.1f ms", m/1000}'); failed: $(grep -c 'ERROR' $B/w.out)"
# pgbench logs each commit's end (epoch s, us) and its latency (us, counted from its
# scheduled start): a stall shows as a run of slow commits that started within it.
echo "commits slower than 100 ms: $(cat $B/w.*[0-9] | awk -v s=$start '$3 > 100000 {t = ($5 * 1000 + int($6 / 1000)) - int($3 / 1000) - s; n++; if (n == 1 || t < lo) lo = t; if (t > hi) hi = t} END {if (n) printf "%d, scheduled from %d to %d ms after node 2 started", n, lo, hi; else print 0}')"
echo "images the leader sent: $(curl -s 127.0.0.1:58101/status | python3 -c 'import json,sys; print(json.load(sys.stdin).get("images_sent", "?"))')"
echo "peak resident memory: leader $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$N1/status), new node $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$(pgrep -f "$B/n2" | head -1)/status) (since its last start)"
pkill -f "$B/n"; wait 2>/dev/null
