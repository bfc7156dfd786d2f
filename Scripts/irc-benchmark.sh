#!/usr/bin/env bash
# Issue 12's figures in one run (docs/performance.md, "IRC"): the IRC listener against the peer,
# InspIRCd 3 from Debian's packages, with the independent referee chatload; a mixed room of IRC
# and native clients against a native-only room (chat-bench fanout, same run); memory per idle
# IRC connection; and, when BEFORE names the release binaries of an older commit, the native
# protocol before and after. RUNS rounds, every workload alternating between servers so noise
# hits all alike. Loopback only; every server is stopped by its PID.
# Needs: cc, inspircd (apt-get install inspircd). Output: $OUT/irc-*.jsonl and tables.
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/setup.sh
BEFORE=${BEFORE:-}           # e.g. /tmp/before/.build/release
IDLE=${IDLE:-10000}
rm -f "$OUT"/irc-*.jsonl "$OUT"/irc-*.txt

cat > "$OUT/irc-chat.json" <<JSON
{"server":{"port":0},"irc":{"enabled":true,"port":0},"database":{"path":"$OUT/irc.sqlite"},
 $BENCH_LIMITS,"log":{"messages":false,"level":"warning"}}
JSON
# The older binary knows no IRC listener: the same file without it.
sed 's/"irc":{"enabled":true,"port":0},//' "$OUT/irc-chat.json" > "$OUT/irc-chat-native.json"
IRC_PORT=${IRC_PORT:-16667}
. Scripts/inspircd.sh

PID=
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=; }
trap stop EXIT
start_ours() { # binary folder, config
  rm -f "$OUT"/irc.sqlite*
  "$1/chat-server" --config "$2" >"$OUT/irc-server.out" 2>"$OUT/irc-server.err" &
  PID=$!
  for _ in $(seq 100); do grep -q "^listening on" "$OUT/irc-server.out" 2>/dev/null && break; sleep 0.1; done
  sleep 0.2
  PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$OUT/irc-server.out")
  IPORT=$(sed -n 's/^irc listening on .*:\([0-9]*\)$/\1/p' "$OUT/irc-server.out")
}
load() { # workload label, then chatload options
  local workload=$1 label=$2; shift 2
  "$OUT/chatload" --server-pid "$PID" --label "$label" "$@" 2>>"$OUT/irc-$workload.txt" >>"$OUT/irc-$workload.jsonl" \
    || echo "$label exited $?" >>"$OUT/irc-$workload.txt"
}
bench() { # workload label, then chat-bench fanout options
  local workload=$1 label=$2; shift 2
  "$BIN/chat-bench" fanout --server-pid "$PID" "$@" 2>>"$OUT/irc-$workload.txt" \
    | python3 -c "import json,sys; r=json.load(sys.stdin); r['label']='$label'; print(json.dumps(r))" >>"$OUT/irc-$workload.jsonl" \
    || echo "$label exited $?" >>"$OUT/irc-$workload.txt"
}
BURST=(-c 1000 -s 10 -m 100 --conc 200)
for _ in $(seq "$RUNS"); do
  start_ours "$BIN" "$OUT/irc-chat.json";   load burst "ours-irc"    --proto irc -p "$IPORT" "${BURST[@]}"; stop
  start_inspircd;                           load burst "inspircd"    --proto irc -p "$IRC_PORT" "${BURST[@]}"; stop
  start_ours "$BIN" "$OUT/irc-chat.json";   load burst "ours-native" --proto chat -p "$PORT" "${BURST[@]}"; stop
  start_ours "$BIN" "$OUT/irc-chat.json";   bench mixed "native-only" --port "$PORT" --clients 1000 --senders 10 --messages 100; stop
  start_ours "$BIN" "$OUT/irc-chat.json";   bench mixed "mixed"       --port "$PORT" --clients 1000 --senders 10 --messages 100 --irc-port "$IPORT" --irc-clients 500; stop
  if [ -n "$BEFORE" ]; then
    for side in before after; do
      bin=$BIN; config="$OUT/irc-chat.json"; [ "$side" = before ] && { bin=$BEFORE; config="$OUT/irc-chat-native.json"; }
      start_ours "$bin" "$config"; load native-burst "$side" --proto chat -p "$PORT" "${BURST[@]}"; stop
      start_ours "$bin" "$config"; load native-rate200 "$side" --proto chat -p "$PORT" -c 1000 -s 10 -m 100 -r 200 --conc 200; stop
    done
  fi
done
start_ours "$BIN" "$OUT/irc-chat.json"; load idle "ours-irc-idle" --proto irc -p "$IPORT" --idle -c "$IDLE" --conc 200; stop
start_inspircd; load idle "inspircd-idle" --proto irc -p "$IRC_PORT" --idle -c "$IDLE" --conc 200; stop
start_ours "$BIN" "$OUT/irc-chat.json"; load idle "ours-native-idle" --proto chat -p "$PORT" --idle -c "$IDLE" --conc 200; stop
if [ -n "$BEFORE" ]; then start_ours "$BEFORE" "$OUT/irc-chat-native.json"; load idle "before-native-idle" --proto chat -p "$PORT" --idle -c "$IDLE" --conc 200; stop; fi

python3 - "$OUT" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
def med(v): return statistics.median(v) if v else float("nan")
def rows(workload):
    path = os.path.join(out, f"irc-{workload}.jsonl")
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
print("| workload | server | deliveries/s (runs) | p50 ms | p99 ms | user CPU s | sys CPU s | lost |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for workload in ["burst", "native-burst", "native-rate200", "mixed"]:
    data = rows(workload)
    for label in sorted({r.get("label", "") for r in data}, key=lambda l: [r.get("label") for r in data].index(l)):
        runs = [r for r in data if r.get("label") == label]
        dps = [r["deliveries_per_s"] for r in runs]
        lat = [r.get("lat_us") or {k: v * 1000 for k, v in r.get("latency_ms", {}).items()} for r in runs]
        p50 = [l.get("p50", float("nan")) / 1000 for l in lat]; p99 = [l.get("p99", float("nan")) / 1000 for l in lat]
        user = [r["server_cpu_user_s"] for r in runs if "server_cpu_user_s" in r]
        sys_ = [r["server_cpu_sys_s"] for r in runs if "server_cpu_sys_s" in r]
        print(f"| {workload} | {label} | {med(dps)/1e6:.2f}M ({', '.join(f'{d/1e6:.2f}' for d in dps)}) | {med(p50):.1f} | "
              f"{med(p99):.1f} | {med(user):.2f} | {med(sys_):.2f} | {sum(r.get('lost', 0) for r in runs)} |")
print()
for r in rows("idle"):
    print(f"idle {r.get('label')}: {r.get('clients', '?')} clients, "
          f"{r.get('rss_per_conn_kb', '?')} KiB per connection")
PY
