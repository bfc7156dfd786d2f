#!/usr/bin/env bash
# Issue 14's figures in one run (docs/performance.md, "Several nodes on PostgreSQL"), on a
# PostgreSQL cluster of its own (Scripts/postgres.sh: fsync and synchronous_commit on, the
# search index in place):
#   1. durable appends: one node, then three nodes at once (chat-bench postgres-append), RUNS times;
#   2. (after a VACUUM of what the appends left, a CHECKPOINT and a sync) three chat-server nodes, 300 clients each in one room, 50 msg/s (chat-bench fanout with
#      --also-port): latency across nodes, lost, order errors, RUNS times;
#   3. burst fan-out on one node, PostgreSQL against SQLite, alternating, RUNS times each.
# Loopback only; every process is stopped by its PID and the cluster removed.
# Output: $OUT/pg-*.jsonl and a table.
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/setup.sh
rm -f "$OUT"/pg-*.jsonl "$OUT"/pg-*.txt
CLUSTER="$OUT/pg-cluster"
Scripts/postgres.sh stop "$CLUSTER" 2>/dev/null || true
PGPORT=$(Scripts/postgres.sh start "$CLUSTER")
URL="postgres://chat@127.0.0.1:$PGPORT/chat"

PIDS=()
stop_nodes() { for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done; PIDS=(); }
cleanup() { stop_nodes; Scripts/postgres.sh stop "$CLUSTER"; }
trap cleanup EXIT
PORTS=()
start_node() { # name database-json
  cat > "$OUT/pg-$1.json" <<JSON
{"server":{"port":0},"database":$2,$BENCH_LIMITS,"log":{"messages":false,"level":"warning"}}
JSON
  "$BIN/chat-server" --config "$OUT/pg-$1.json" >"$OUT/pg-$1.out" 2>"$OUT/pg-$1.err" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q "^listening on" "$OUT/pg-$1.out" 2>/dev/null && break; sleep 0.1; done
  PORTS+=("$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$OUT/pg-$1.out")")
}
label() { python3 -c "import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); r['label']=sys.argv[1]; print(json.dumps(r))" "$1"; }

# 1. Appends.
for _ in $(seq "$RUNS"); do
  "$BIN/chat-bench" postgres-append --port "$PGPORT" --messages 200000 --batch 512 --writers 8 2>>"$OUT/pg-bench.txt" | label one >>"$OUT/pg-append.jsonl"
  "$BIN/chat-bench" postgres-append --port "$PGPORT" --messages 200000 --batch 512 --writers 9 --nodes 3 2>>"$OUT/pg-bench.txt" | label three >>"$OUT/pg-append.jsonl"
done

# The appends leave autovacuum's work and a checkpoint due, and the disk full of dirty pages: done
# now, in that order (the VACUUM dirties every page it visits), so that the latency runs measure
# the nodes on a large database, not the database and the kernel writing out the last benchmark.
# Every commit waits for its WAL flush, which waits behind any other write to the disk.
PSQL=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
"$PSQL" -q -h 127.0.0.1 -p "$PGPORT" -U chat chat -c "VACUUM (ANALYZE) messages" -c "CHECKPOINT" >/dev/null
sync

# 2. Three nodes, 900 clients in one room, 50 msg/s.
PORTS=()
for node in a b c; do start_node "node-$node" "{\"postgres\":\"$URL\"}"; done
for run in $(seq "$RUNS"); do
  "$BIN/chat-bench" fanout --port "${PORTS[0]}" --also-port "${PORTS[1]}" --also-port "${PORTS[2]}" --clients 900 --senders 10 \
    --messages 100 --rate 50 --room "three$run" --timeline 2>>"$OUT/pg-bench.txt" | label three-nodes >>"$OUT/pg-nodes.jsonl" || true
done
stop_nodes

# 3. Burst fan-out on one node: PostgreSQL and SQLite, alternating.
for run in $(seq "$RUNS"); do
  for store in postgres sqlite; do
    PORTS=()
    if [ $store = postgres ]; then start_node burst-pg "{\"postgres\":\"$URL\"}"; else rm -f "$OUT"/pg-burst.sqlite*; start_node burst-sqlite "{\"path\":\"$OUT/pg-burst.sqlite\"}"; fi
    "$BIN/chat-bench" fanout --port "${PORTS[0]}" --clients 1000 --senders 10 --messages 100 --room "burst$run" \
      2>>"$OUT/pg-bench.txt" | label "$store" >>"$OUT/pg-burst.jsonl" || true
    stop_nodes
  done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
load = lambda name: [json.loads(l) for l in open(os.path.join(out, name)) if l.strip()]
med = statistics.median
appends = load("pg-append.jsonl")
print("| durable appends (batch 512) | messages/s, median (runs) |")
print("| --- | --- |")
for label, text in [("one", "one node, 8 writers"), ("three", "three nodes at once, 9 writers")]:
    rates = [r["per_second"] for r in appends if r["label"] == label]
    print(f"| {text} | {med(rates):,.0f} ({', '.join(f'{x:,.0f}' for x in rates)}) |")
nodes = load("pg-nodes.jsonl")
print()
print("| three nodes, 900 clients, 50 msg/s | p50 ms | p99 ms | max ms | stalls (100 ms of sending with a message over 50 ms) | lost | order errors |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for r in nodes:
    stalls = sum(1 for _, worst in r.get("timeline", []) if worst > 50)
    print(f"| run | {r['latency_ms']['p50']:.1f} | {r['latency_ms']['p99']:.1f} | {r['latency_ms']['max']:.1f} | {stalls} | {r['lost']} | {r['order_errors']} |")
print(f"| median | {med(r['latency_ms']['p50'] for r in nodes):.1f} | {med(r['latency_ms']['p99'] for r in nodes):.1f} | | | | |")
burst = load("pg-burst.jsonl")
print()
print("| burst fan-out, one node, 1,000 clients, 10 × 100 | deliveries/s, median (runs) | lost |")
print("| --- | --- | --- |")
medians = {}
for label in ["postgres", "sqlite"]:
    data = [r for r in burst if r["label"] == label]
    rates = [r["deliveries_per_s"] for r in data]
    medians[label] = med(rates)
    print(f"| {label} | {medians[label]/1e6:.2f}M ({', '.join(f'{x/1e6:.2f}' for x in rates)}) | {sum(r['lost'] for r in data)} |")
print(f"\nPostgreSQL burst / SQLite burst: {medians['postgres'] / medians['sqlite']:.0%}")
PY
