# Sourced by the benchmark scripts: where the figures go ($OUT), how many rounds ($RUNS), the
# release build ($BIN), and the independent referee chatload, built from ../shared when missing
# or older than its source.
OUT=${OUT:-/tmp/chat-benchmarks}
RUNS=${RUNS:-3}
BIN=${BIN:-.build/release}
mkdir -p "$OUT"
swift build -c release >/dev/null
CHATLOAD_SOURCE=../shared/tools/loadgen/chatload.c
if [ ! -x "$OUT/chatload" ] || [ "$CHATLOAD_SOURCE" -nt "$OUT/chatload" ]; then
  cc -O2 -Wall -Wextra -Wno-unused-parameter -std=gnu11 -o "$OUT/chatload" "$CHATLOAD_SOURCE"
fi
