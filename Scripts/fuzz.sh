#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/) with coverage and AddressSanitizer and runs each one,
# bounded in time: Scripts/fuzz.sh [frames|config|irc|all] [SECONDS per target, default 60].
# Inputs libFuzzer finds go to a scratch corpus under .build-fuzz/ (the checked-in seeds in
# Fuzz/corpus are only read); a crash leaves its input as .build-fuzz/crash-* and the script
# fails: turn that input into a test. docs/fuzzing.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
seconds=${2:-60}
scratch=.build-fuzz
mkdir -p "$scratch"
# One `-sanitize=fuzzer,address` for the compiler: SwiftPM's `--sanitize` passes each sanitizer
# as its own flag in no fixed order, and the compiler keeps only one of them, so half the builds
# came out without coverage (libFuzzer then explores nothing; run() refuses that as a pass).
build() { # product
  swift build --package-path Fuzz --scratch-path "$scratch/build" -c debug \
    --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product "$1" >"$scratch/build-$1.log" 2>&1 ||
    { grep -v "ld.gold: warning" "$scratch/build-$1.log" | tail -30 >&2; exit 1; }
}
run() { # product, corpus name
  build "$1"
  local work="$scratch/corpus-$2"
  mkdir -p "$work"
  echo "fuzzing $1 for $seconds s (seeds: Fuzz/corpus/$2)"
  # Swift's own crash handler would read the stack under ASan and bury the report: off.
  SWIFT_BACKTRACE=enable=no "$scratch/build/debug/$1" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$scratch/" -print_final_stats=1 \
    "$work" "Fuzz/corpus/$2" 2>"$scratch/run-$1.log" ||
    { tail -40 "$scratch/run-$1.log" >&2; echo "fuzz: $1 found a crash (input in $scratch/)" >&2; exit 1; }
  # A target whose code was not instrumented "runs" but explores nothing: refuse to call that a pass.
  if grep -q "no interesting inputs were found" "$scratch/run-$1.log"; then
    echo "fuzz: $1 is not instrumented for coverage" >&2; exit 1
  fi
  grep -E "^Done [0-9]+ runs|INITED cov|DONE " "$scratch/run-$1.log" || true
}
case "$which" in
  frames) run fuzz-frames frames ;;
  config) run fuzz-config config ;;
  irc) run fuzz-irc irc ;;
  all) run fuzz-frames frames; run fuzz-config config; run fuzz-irc irc ;;
  *) echo "usage: Scripts/fuzz.sh [frames|config|irc|all] [seconds]" >&2; exit 64 ;;
esac
