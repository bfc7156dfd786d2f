#!/usr/bin/env bash
# chat-server against the peer, InspIRCd 3 from Debian's packages, in one run (issue 10):
# 1,000 clients in one room/channel, 10 senders, 100-byte messages, measured by the independent
# referee chatload. Workloads: burst (unlimited rate), 200 msg/s and 50 msg/s; RUNS rounds, each
# round runs every workload on both servers, alternating, so noise hits both alike. Loopback
# only; InspIRCd's config is written here and it is stopped by its PID.
# Needs: cc, and inspircd (apt-get install inspircd). Output: $OUT/peer-*.jsonl and a table.
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/setup.sh

cat > "$OUT/peer-chat.json" <<JSON
{"server":{"port":0},"database":{"path":"$OUT/peer.sqlite"},$BENCH_LIMITS,"log":{"messages":false,"level":"warning"}}
JSON
# WORKLOADS="rate200 rate50" runs only those (default: all three).
# LOOPS=N adds a third server to every round: chat-server with N event loops ("chatN"), to
# compare against the default (one fewer than the cores).
LOOPS=${LOOPS:-}
sed 's/"server":{"port":0}/"server":{"port":0,"eventLoops":'"${LOOPS:-1}"'}/' "$OUT/peer-chat.json" > "$OUT/peer-chat-loops.json"
rm -f "$OUT"/peer-*.jsonl "$OUT"/peer-*.txt
IRC_PORT=${IRC_PORT:-16667}
. Scripts/inspircd.sh

PID=
stop() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=; }
trap stop EXIT
# BASELINE=path/to/chat-server adds a fourth server to every round ("before"): another build,
# for a before/after comparison in the same run.
BASELINE=${BASELINE:-}
start_chat() { # config (default: peer-chat.json), binary (default: this build's)
  rm -f "$OUT"/peer.sqlite*
  "${2:-$BIN/chat-server}" --config "${1:-$OUT/peer-chat.json}" >"$OUT/peer-server.out" 2>"$OUT/peer-server.err" &
  PID=$!
  for _ in $(seq 100); do grep -q "listening on" "$OUT/peer-server.out" 2>/dev/null && break; sleep 0.1; done
  PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$OUT/peer-server.out"); PROTO=chat
}
measure() { # server, workload, chatload options
  local server=$1 workload=$2; shift 2
  case "$server" in
    chat[0-9]*) start_chat "$OUT/peer-chat-loops.json" ;;
    before) start_chat "$OUT/peer-chat.json" "$BASELINE" ;;
    *) "start_$server" ;;
  esac
  "$OUT/chatload" --proto "$PROTO" -p "$PORT" -c 1000 -s 10 -m 100 --conc 200 --server-pid "$PID" --label "$server $workload" "$@" \
    2>>"$OUT/peer-$workload.txt" >>"$OUT/peer-$workload.jsonl" || echo "$server $workload exited $?" >>"$OUT/peer-$workload.txt"
  stop
}
for _ in $(seq "$RUNS"); do
  for server in chat inspircd ${LOOPS:+chat$LOOPS} ${BASELINE:+before}; do
    for workload in ${WORKLOADS:-burst rate200 rate50}; do
      case "$workload" in
        burst) measure "$server" burst ;;
        rate200) measure "$server" rate200 -r 200 ;;
        rate50) measure "$server" rate50 -m 50 -r 50 ;;
      esac
    done
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys, glob, os
out = sys.argv[1]
def med(values): return statistics.median(values) if values else float("nan")
print("| workload | server | deliveries/s | p50 ms | p99 ms | user CPU s | sys CPU s | lost | runs |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for workload in ["burst", "rate200", "rate50"]:
    path = os.path.join(out, f"peer-{workload}.jsonl")
    if not os.path.exists(path): continue
    rows = [json.loads(l) for l in open(path) if l.strip()]
    for server in sorted({r.get("label", "").split(" ")[0] for r in rows}, key=lambda s: (s != "chat", s)):
        runs = [r for r in rows if r.get("label", "").startswith(server + " ")]
        if not runs: continue
        g = lambda k: [r[k] for r in runs if k in r]
        p99 = [r["lat_us"]["p99"] for r in runs]
        p50 = [r["lat_us"]["p50"] for r in runs]
        print(f"| {workload} | {server} | {med(g('deliveries_per_s'))/1e6:.2f}M | {med(p50)/1000:.1f} | "
              f"{med(p99)/1000:.1f} ({', '.join(f'{v/1000:.1f}' for v in p99)}) | {med(g('server_cpu_user_s')):.2f} | "
              f"{med(g('server_cpu_sys_s')):.2f} | {sum(g('lost'))} | {len(runs)} |")
PY
