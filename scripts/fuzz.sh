#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for a while: the Singer line
# parser and the record decoder. Needs the nightly toolchain; installs
# cargo-fuzz when it is missing. The corpus lives under ~/.cache/inlet/fuzz
# (seeded from samples/ and fuzz/regressions/, which keeps every input that
# once crashed a target).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 30 s, all targets)
#   scripts/fuzz.sh --runs N [TARGET...]                   (N executions per target)
# INLET_FUZZ_BUILD=dev builds the targets unoptimised (with debug assertions and
# overflow checks): a cold build in a few minutes instead of half an hour, for
# CI's short smoke run. Long runs use the default optimised build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
limit="-max_total_time=${1:-30}"
if [ "${1:-}" = "--runs" ]; then limit="-runs=$2"; shift 2; elif [ $# -gt 0 ]; then shift; fi
targets=("$@")
build=()
[ "${INLET_FUZZ_BUILD:-}" = dev ] && build=(--dev)
# INLET_FUZZ_SANITIZER=none: no AddressSanitizer (safe Rust; several times the executions)
[ -n "${INLET_FUZZ_SANITIZER:-}" ] && build+=(-s "$INLET_FUZZ_SANITIZER")
[ ${#targets[@]} -gt 0 ] || targets=(singer_line record_decoder copy_decoder)
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain; skipped" >&2
  exit 0
fi
if ! cargo fuzz --help > /dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (once)" >&2
  cargo install --locked cargo-fuzz --version 0.13.1 --quiet
fi
cache="$HOME/.cache/inlet/fuzz"
mkdir -p "$cache"
for t in "${targets[@]}"; do
  corpus="$cache/corpus/$t"
  mkdir -p "$corpus"
  if [ -z "$(ls -A "$corpus")" ]; then
    # seeds: the lines of the bundled sample (the decoder's take a schema byte first)
    i=0
    while IFS= read -r line && [ $i -lt 200 ]; do
      case "$t" in
        singer_line) printf '%s' "$line" > "$corpus/seed-$i" ;;
        copy_decoder) [ $i -gt 0 ] || printf '\000\000\003\000\000\000\004\000\000\000\007\000\000\000\001x\377\377\377\377\377\377' > "$corpus/seed-$i" ;;
        record_decoder) printf '\002%s' "$(printf '%s' "$line" | python3 -c 'import json,sys; m=json.loads(sys.stdin.read()); print(json.dumps(m.get("record", {})))')" > "$corpus/seed-$i" ;;
      esac
      i=$((i + 1))
    done < samples/orders.singer.jsonl
  fi
  echo "fuzz: $t ($limit)" >&2
  log="$cache/$t.log"
  rc=0
  # git keeps no empty folder: a target with no regression input yet has none
  dirs=("$corpus")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  cargo +nightly fuzz run "${build[@]}" --fuzz-dir fuzz --target-dir "$cache/target" "$t" \
    "${dirs[@]}" -- "$limit" -print_final_stats=1 \
    -artifact_prefix="$cache/artifacts-$t-" > "$log" 2>&1 || rc=$?
  grep -E "^(Done|stat::number_of_executed_units|SUMMARY)|panicked|deadly signal" "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $t failed (exit $rc); the input is in $cache/artifacts-$t-*, the log in $log" >&2
    exit 1
  fi
done
