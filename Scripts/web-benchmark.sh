#!/usr/bin/env bash
# Issue 13's figures in one run (docs/performance.md, "Web"): burst fan-out to 1,000 clients
# over WebSocket against the same over TCP (chat-bench fanout, alternating, RUNS rounds, a fresh
# server each), every message checked in the database; memory per idle WebSocket connection;
# and the page (first render, bytes, a 5,000-message room scrolled back) in headless Chromium.
# Loopback only; every server is stopped by its PID. Output: $OUT/web-*.jsonl and a table.
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/setup.sh
IDLE=${IDLE:-5000}
rm -f "$OUT"/web-*.jsonl "$OUT"/web-*.txt

cat > "$OUT/web-chat.json" <<JSON
{"server":{"port":0},"web":{"enabled":true,"port":0},"database":{"path":"$OUT/web.sqlite"},
 $BENCH_LIMITS,"log":{"messages":false,"level":"warning"}}
JSON

PID=
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=; }
trap stop EXIT
start() {
  rm -f "$OUT"/web.sqlite*
  "$BIN/chat-server" --config "$OUT/web-chat.json" >"$OUT/web-server.out" 2>"$OUT/web-server.err" &
  PID=$!
  for _ in $(seq 100); do grep -q "^web listening on" "$OUT/web-server.out" 2>/dev/null && break; sleep 0.1; done
  PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$OUT/web-server.out")
  WPORT=$(sed -n 's/^web listening on .*:\([0-9]*\)$/\1/p' "$OUT/web-server.out")
}
stored() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" "$OUT/web.sqlite"; }
fanout() { # tcp | websocket
  start
  local web=(); [ "$1" = websocket ] && web=(--web-port "$WPORT")
  "$BIN/chat-bench" fanout --port "$PORT" "${web[@]}" --clients 1000 --senders 10 --messages 100 --server-pid "$PID" \
    2>>"$OUT/web-bench.txt" >"$OUT/web-one.json" || echo "$1 exited $?" >>"$OUT/web-bench.txt"
  stop
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['label']=sys.argv[2]; r['stored']=int(sys.argv[3]); print(json.dumps(r))" \
    "$OUT/web-one.json" "$1" "$(stored)" >>"$OUT/web-fanout.jsonl"
}
for _ in $(seq "$RUNS"); do fanout tcp; fanout websocket; done
for transport in tcp websocket; do
  start
  web=(); [ "$transport" = websocket ] && web=(--web-port "$WPORT")
  "$BIN/chat-bench" idle --port "$PORT" "${web[@]}" --clients "$IDLE" --server-pid "$PID" 2>>"$OUT/web-bench.txt" \
    | python3 -c "import json,sys; r=json.load(sys.stdin); r['label']='$transport'; print(json.dumps(r))" >>"$OUT/web-idle.jsonl"
  stop
done
python3 Scripts/page-benchmark.py --server "$BIN/chat-server" --runs 5 >"$OUT/web-page.json"

python3 - "$OUT" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "web-fanout.jsonl")) if l.strip()]
print("| fan-out, 1,000 clients, 10 × 100 messages | deliveries/s, median (runs) | p99 ms | lost | stored |")
print("| --- | --- | --- | --- | --- |")
medians = {}
for label in ["tcp", "websocket"]:
    data = [r for r in rows if r["label"] == label]
    rates = [r["deliveries_per_s"] for r in data]
    medians[label] = statistics.median(rates)
    print(f"| {label} | {medians[label]/1e6:.2f}M ({', '.join(f'{x/1e6:.2f}' for x in rates)}) | "
          f"{statistics.median(r['latency_ms']['p99'] for r in data):.1f} | {sum(r['lost'] for r in data)} | "
          f"{', '.join(str(r['stored']) for r in data)} |")
print(f"\nWebSocket / TCP: {medians['websocket'] / medians['tcp'] * 100:.0f}%\n")
for line in open(os.path.join(out, "web-idle.jsonl")):
    r = json.loads(line)
    print(f"idle {r['label']}: {r['clients']} connections, {r['rss_per_connection_kib']:.2f} KiB each")
page = json.load(open(os.path.join(out, "web-page.json")))
print(f"\npage: first contentful paint median {page['first_contentful_paint_ms']['median']:.0f} ms "
      f"(max {page['first_contentful_paint_ms']['max']:.0f}), {page['page_bytes']} bytes; "
      f"scroll-back of {page['scrollback']['messages']} messages in {page['scrollback']['seconds']:.1f} s, "
      f"at most {page['scrollback']['max_rendered_lines']} lines rendered, longest task {page['scrollback']['longest_task_ms']:.0f} ms")
PY
