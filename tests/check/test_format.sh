#!/usr/bin/env bash
# test_format.sh - every C source and header of the project (git's files and
# new ones not yet added) is formatted as the committed .clang-format says.
# Pinned to Debian 12's clang-format 14: another version formats some
# constructs differently. Fix a failure with:
#   clang-format-14 -i FILE...
source "$(dirname "$0")/lib.sh"
need_tool clang-format-14 'version 14\.' clang-format-14
[ -f .clang-format ] || fail "no .clang-format at the root of $SOVA_SRC"

mapfile -t files < <(project_files '*.c' '*.h')
[ ${#files[@]} -gt 0 ] || fail "no C files found under $SOVA_SRC"
# One run over all files; each misformatted place is reported as
# FILE:LINE:COL: error: code should be clang-formatted.
bad=()
if ! out=$(clang-format-14 --style=file --dry-run --Werror "${files[@]}" 2>&1); then
  mapfile -t bad < <(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: .*/\1/p' <<<"$out" | sort -u)
  [ ${#bad[@]} -gt 0 ] || fail "clang-format-14 failed: $(head -n 20 <<<"$out")"
fi
if [ ${#bad[@]} -gt 0 ]; then
  for f in "${bad[@]}"; do
    echo "== $f: not as clang-format-14 formats it:"
    diff -u "$f" <(clang-format-14 --style=file "$f") | head -n 40 || true
  done
  fail "${#bad[@]} of ${#files[@]} files are not formatted (clang-format-14 -i ${bad[*]})"
fi
ok "all ${#files[@]} .c and .h files are formatted as .clang-format says (clang-format 14)"
