#!/usr/bin/env bash
# Runs every benchmark of docs/performance.md on this machine, three times each, and writes
# the JSON lines to $OUT (default /tmp/chat-benchmarks). Release builds; loopback only; every
# run is bounded in count and time. Needs cc for the independent referee, chatload.
set -euo pipefail
cd "$(dirname "$0")/.."
. Scripts/setup.sh

# Storage (issue 2) and the admin tool (issue 5): a fresh 1,000,000-message database.
rm -f "$OUT"/bench.sqlite*
for i in $(seq "$RUNS"); do
  "$BIN/chat-bench" storage --database "$OUT/bench.sqlite" 2>>"$OUT/storage.txt" >>"$OUT/storage.jsonl"
done

# The server (issue 6): a fresh server per workload, rate limit off, message log off.
# The per-address and login limits are for strangers on the internet; every benchmark client
# comes from 127.0.0.1, so they are lifted here.
cat > "$OUT/bench.json" <<JSON
{"server":{"port":0},"database":{"path":"server.sqlite"},$BENCH_LIMITS,
 "rooms":{"createPerUserPerHour":1000000,"maxRooms":1000000},
 "log":{"messages":false,"level":"warning"}}
JSON
SERVER_PID=
start_server() { # optional: a database to serve instead of a fresh one
  rm -f "$OUT"/server.sqlite*
  "$BIN/chat-server" --config "${CONFIG:-$OUT/bench.json}" ${1:+--database "$1"} >"$OUT/server.out" 2>"$OUT/server.err" &
  SERVER_PID=$!
  for _ in $(seq 100); do grep -q "listening on" "$OUT/server.out" 2>/dev/null && break; sleep 0.1; done
  PORT=$(sed -n 's/listening on .*:\([0-9]*\)$/\1/p' "$OUT/server.out")
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; }
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT

run() { # name, then the command
  local name=$1; shift
  for i in $(seq "$RUNS"); do
    start_server
    local command=("${@//_PORT_/$PORT}")
    "${command[@]}" --server-pid "$SERVER_PID" 2>>"$OUT/$name.txt" >>"$OUT/$name.jsonl" || echo "run $i of $name exited $?" >>"$OUT/$name.txt"
    stop_server
  done
}
CL="$OUT/chatload --proto chat"
run burst        $CL -p _PORT_ -c 1000 -s 10 -m 100
run rate200      $CL -p _PORT_ -c 1000 -s 10 -m 100 -r 200
run joinlat      $CL -p _PORT_ -c 50 -s 5 -m 200 -r 200 --join-lat 40 --join-history 500 --join-gap-ms 20
run storm5000    $CL -p _PORT_ -c 5000 --idle --timeout 500 --join-timeout 450
run idle10000    $CL -p _PORT_ -c 10000 --idle --timeout 500 --join-timeout 450
run bench-burst    "$BIN/chat-bench" fanout --port _PORT_ --clients 1000 --senders 10 --messages 100
run bench-stalled  "$BIN/chat-bench" fanout --port _PORT_ --clients 1000 --senders 10 --messages 100 --stalled 1
run bench-join     "$BIN/chat-bench" join --port _PORT_ --joins 50 --history 500 --rate 200

# Accounts, direct messages and search (issue 11).
run logins       "$BIN/chat-bench" logins --port _PORT_ --clients 1000 --rate 50 --logins-per-second 20 --seconds 10
run dm           "$BIN/chat-bench" dm --port _PORT_ --pairs 500 --rate 1000 --seconds 10
# The search frame over the storage benchmark's 1,000,000 messages.
for i in $(seq "$RUNS"); do
  start_server "$OUT/bench.sqlite"
  "$BIN/chat-bench" search --port "$PORT" --queries 200 2>>"$OUT/search.txt" >>"$OUT/search.jsonl" || echo "run $i of search exited $?" >>"$OUT/search.txt"
  stop_server
done

# Attacks (issue 9), against the default per-address and login limits (only the rate limit is
# off, so that flooders flood and the measured room can take 50 msg/s from one sender).
cat > "$OUT/attack.json" <<JSON
{"server":{"port":0},"database":{"path":"server.sqlite"},"limits":{"rate":null,"maxClients":20000},
 "log":{"messages":false,"level":"warning"}}
JSON
CONFIG="$OUT/attack.json" run idle-attack  "$BIN/chat-bench" overload --port _PORT_ --attack idle --sockets 10000 --clients 100 --rate 50 --seconds 10 --close-wait 40
CONFIG="$OUT/attack.json" run flood-attack "$BIN/chat-bench" overload --port _PORT_ --attack flood --flooders 50 --clients 2 --rate 10 --seconds 10

# TLS (issue 9): the same burst over TLS, against plaintext in the same run (chat-bench both).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
sed -e 's|"server":{"port":0}|"server":{"port":0,"tls":true}|' -e "s|^{|{\"tls\":{\"certificate\":\"$OUT/cert.pem\",\"key\":\"$OUT/key.pem\"},|" \
  "$OUT/bench.json" > "$OUT/bench-tls.json"
for i in $(seq "$RUNS"); do
  RUNS=1 run bench-burst-plain "$BIN/chat-bench" fanout --port _PORT_ --clients 1000 --senders 10 --messages 100
  RUNS=1 CONFIG="$OUT/bench-tls.json" run bench-burst-tls "$BIN/chat-bench" fanout --port _PORT_ --clients 1000 --senders 10 --messages 100 --tls
done

# The peer (issue 10): InspIRCd 3 and chat-server under the same referee, in one run.
OUT="$OUT" RUNS="$RUNS" Scripts/peer-benchmark.sh
