#!/usr/bin/env bash
# run-fuzzer.sh BINARY CORPUS_DIR SECONDS
# Runs one libFuzzer target for a bounded time over a scratch copy of its seed
# corpus (the repo's corpus is never written). Fails if the corpus is missing
# or empty, or if the fuzzer finds a crash, leak or timeout.
set -euo pipefail
bin=$1 corpus=$2 secs=$3
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
  echo "FAIL: seed corpus $corpus is missing or empty" >&2
  exit 1
fi
# Crash, leak and timeout inputs are kept next to the build (fuzz-artifacts/),
# so a failure can be replayed: BINARY fuzz-artifacts/crash-...
artifacts="$PWD/fuzz-artifacts/$(basename "$bin")"
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
cd "$work"
set +e
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" .
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "FAIL: $(basename "$bin") found a problem; inputs kept in $artifacts:" >&2
  ls -l "$artifacts" >&2
fi
exit $rc
