# tests/check/lib.sh - helpers for the checks of the tree (sourced by
# tests/check/test_*.sh; docs/TESTING.md). Env from ctest: SOVA_SRC (source
# dir), SOVA_BIN (build dir under test).
set -euo pipefail
SOVA_SRC=${SOVA_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$SOVA_SRC"

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# project_files GLOB...: the project's own files matching the globs (e.g.
# '*.c' '*.h'), relative to SOVA_SRC, sorted: what git tracks plus new files
# not yet added (never ignored ones such as build folders); outside a git
# checkout, every matching file but build*/ and .git/.
project_files() {
  local pats=() p
  if git -C "$SOVA_SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$SOVA_SRC" ls-files --cached --others --exclude-standard -- "$@" | sort -u |
      while IFS= read -r p; do [ -f "$p" ] && echo "$p"; done
    return
  fi
  for p in "$@"; do pats+=(-o -name "$p"); done
  find . \( -path ./.git -o -path './build*' \) -prune -o -type f \( "${pats[@]:1}" \) -print |
    sed 's|^\./||' | sort
}

# need_tool NAME VERSION_REGEX PACKAGE: NAME runs and its --version matches;
# the checks are pinned to Debian 12's tools, whose output they depend on.
need_tool() {
  local name=$1 re=$2 pkg=$3 v
  command -v "$name" >/dev/null || fail "$name is not installed (Debian package $pkg; deploy/sova-dev deps installs it)"
  v=$("$name" --version 2>&1 | head -n 1)
  [[ $v =~ $re ]] || fail "$name is '$v', the check is pinned to /$re/ (Debian 12's $pkg)"
  echo "# $name: $v"
}
