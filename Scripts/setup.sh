# Sourced by the benchmark scripts: where the figures go ($OUT), how many rounds ($RUNS), the
# release build ($BIN), and the independent referee chatload, built from ../shared when missing
# or older than its source.
OUT=${OUT:-/tmp/chat-benchmarks}
RUNS=${RUNS:-3}
BIN=${BIN:-.build/release}
mkdir -p "$OUT"
# NO_BUILD=1 with BIN set: measure a release build made elsewhere (another scratch path).
[ -n "${NO_BUILD:-}" ] || swift build -c release >/dev/null
CHATLOAD_SOURCE=../shared/tools/loadgen/chatload.c
if [ ! -x "$OUT/chatload" ] || [ "$CHATLOAD_SOURCE" -nt "$OUT/chatload" ]; then
  cc -O2 -Wall -Wextra -Wno-unused-parameter -std=gnu11 -o "$OUT/chatload" "$CHATLOAD_SOURCE"
fi
# The limits every server benchmark lifts: all the load comes from 127.0.0.1, so the
# per-address limits (and the rate limit, the idle and login timeouts) would measure themselves.
BENCH_LIMITS='"limits":{"rate":null,"maxClients":20000,"idleTimeoutSeconds":0,"loginTimeoutSeconds":0,"maxConnectionsPerAddress":20000,"maxPendingLoginsPerAddress":20000,"maxPendingLogins":20000,"newNamesPerAddressPerHour":1000000}'
