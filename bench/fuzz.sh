#!/usr/bin/env bash
# fuzz.sh BUILD_DIR [SECONDS] [TARGET...]
# Runs every libFuzzer target of a clang build made with -DSOVA_FUZZ=ON
# (deploy/sova-dev test makes one in build-asan) for SECONDS each (default
# 60), over a scratch copy of its seed corpus (tests/fuzz/corpus/<target>),
# and prints per target: executions, executions per second, coverage
# (edges), features, corpus size at the end, and what it found. A crash,
# leak or timeout input is kept under BUILD_DIR/fuzz-artifacts/<target>/;
# make it a seed of the target's corpus (tests/fuzz/corpus/<target>/
# regress-*) once fixed, so every run replays it. Not a test; exits 1 if
# anything was found.
set -euo pipefail
build=$(cd "${1:?usage: fuzz.sh BUILD_DIR [SECONDS] [TARGET...]}" && pwd)
secs=${2:-60}
shift $(($# >= 2 ? 2 : 1))
src=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$src"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
found=0
printf '%-22s %12s %10s %8s %8s %7s  %s\n' target execs exec/s cov ft corpus result
for t in "${targets[@]}"; do
  bin=$build/tests/$t
  [ -x "$bin" ] || { echo "$t: not built in $build (configure with -DSOVA_FUZZ=ON)" >&2; exit 2; }
  work=$(mktemp -d)
  cp -r "$src/tests/fuzz/corpus/$t/." "$work/"
  artifacts=$build/fuzz-artifacts/$t
  mkdir -p "$artifacts"
  set +e
  (cd "$work" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" . >"$work.log" 2>&1)
  rc=$?
  set -e
  execs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$work.log" | grep -Eo '[0-9]+$' || echo 0)
  speed=$((execs / secs))
  last=$(grep -E '^#[0-9]+' "$work.log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || echo ?)
  ft=$(grep -Eo 'ft: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || echo ?)
  corp=$(grep -Eo 'corp: [0-9]+' <<<"$last" | grep -Eo '[0-9]+' || echo ?)
  result=clean
  if [ $rc -ne 0 ]; then
    result="FOUND: $(ls "$artifacts" | tr '\n' ' ')"
    found=1
  fi
  printf '%-22s %12s %10s %8s %8s %7s  %s\n' "$t" "$execs" "$speed" "$cov" "$ft" "$corp" "$result"
  rm -rf "$work" "$work.log"
done
exit $found
