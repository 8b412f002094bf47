#!/usr/bin/env bash
# test_layers.sh - the tree against its architecture (docs/SUPERNODE.md):
# no file-level call cycle but two files of one module, libraries and
# supernode/'s folders call only downwards, pure modules include no
# libevent, no clock read outside common/. Reads the object files of the
# build under test (SOVA_BIN) with nm; tests/check/layers.py says how.
set -euo pipefail
src=${SOVA_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${SOVA_BIN:?SOVA_BIN: the build folder to check}
exec python3 "$src/tests/check/layers.py" "$src" "$bin"
