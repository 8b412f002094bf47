#!/usr/bin/env bash
# test_cppcheck.sh - static analysis with cppcheck (Debian 12's 2.10, pinned:
# another version finds other things) of every C file of the project: those
# the build under test compiles, as it compiles them (its
# compile_commands.json), and the rest (the libFuzzer targets, built only by
# the fuzzing build) with the project's include folders. Options in
# cppcheck-options.txt, kinds of finding not wanted in
# cppcheck-suppressions.txt.
#
# Only NEW findings fail: cppcheck-baseline.txt holds the findings the tree
# had when the check came, to be fixed, one line each as "FILE ID MESSAGE"
# (FILE without its folder and no line number, so moving a file or editing
# around a finding does not turn it into a new one). The baseline is a
# ratchet: a finding that is gone must leave the baseline too (the check
# says which line to delete).
source "$(dirname "$0")/lib.sh"
: "${SOVA_BIN:?SOVA_BIN must point at the build directory}"
need_tool cppcheck '^Cppcheck 2\.10$' cppcheck
DB=$SOVA_BIN/compile_commands.json
[ -f "$DB" ] || fail "no $DB (the build exports it: CMAKE_EXPORT_COMPILE_COMMANDS)"
CHECK=$SOVA_SRC/tests/check
OUT=$(mktemp -d /tmp/sova-cppcheck.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

mapfile -t opts < <(grep -v '^[[:space:]]*\(#\|$\)' "$CHECK/cppcheck-options.txt")
common=("${opts[@]}" "--suppressions-list=$CHECK/cppcheck-suppressions.txt"
        "--template={file}:{line}:{id}:{severity}:{message}" -j "$(nproc)")

# 1. What the build compiles, as it compiles it (its own flags and includes).
mapfile -t files < <(project_files '*.c')
python3 - "$DB" "$SOVA_SRC" "$OUT/compile_commands.json" "$OUT/rest" "${files[@]}" <<'PY'
import json, os, sys
db, src, out_db, out_rest, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
entries, seen = [], set()
for e in json.load(open(db)):
    path = os.path.normpath(os.path.join(e["directory"], e["file"]))
    rel = os.path.relpath(path, src)
    if rel.startswith("..") or rel in seen:
        continue  # not the project's own, or compiled twice
    seen.add(rel)
    entries.append(e)
json.dump(entries, open(out_db, "w"))
open(out_rest, "w").write("".join(f + "\n" for f in files if f not in seen))
PY
echo "# $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$OUT/compile_commands.json") files as the build compiles them"
cppcheck "${common[@]}" --project="$OUT/compile_commands.json" --cppcheck-build-dir="$(mkdir -p "$OUT/c1" && echo "$OUT/c1")" \
  2>"$OUT/findings" >/dev/null || fail "cppcheck failed: $(tail -n 5 "$OUT/findings")"

# 2. The rest, with every project folder that holds a header.
mapfile -t rest <"$OUT/rest"
if [ ${#rest[@]} -gt 0 ]; then
  incs=()
  while IFS= read -r d; do incs+=(-I "$d"); done < <(project_files '*.h' | xargs -n1 dirname | sort -u)
  echo "# ${#rest[@]} files the build does not compile: ${rest[*]}"
  cppcheck "${common[@]}" "${incs[@]}" -I "$SOVA_BIN/generated" \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE "${rest[@]}" 2>>"$OUT/findings" >/dev/null ||
    fail "cppcheck failed: $(tail -n 5 "$OUT/findings")"
fi

# 3. Compare with the baseline, finding by finding (a key may occur more than once).
python3 - "$OUT/findings" "$CHECK/cppcheck-baseline.txt" "$SOVA_SRC" <<'PY'
import collections, os, re, sys
findings_path, baseline_path, src = sys.argv[1:4]
line_re = re.compile(r"^(.+?):(\d+):([A-Za-z0-9_]+):(\w+):(.*)$")
found = collections.defaultdict(list)
other = []
for line in open(findings_path, errors="replace"):
    line = line.rstrip("\n")
    m = line_re.match(line)
    if not m:
        if line.strip():
            other.append(line)
        continue
    path, lineno, ident, severity, message = m.groups()
    rel = os.path.relpath(os.path.normpath(os.path.join(src, path)), src)
    key = "%s %s %s" % (os.path.basename(rel), ident, message.strip())
    found[key].append("%s:%s: %s: %s [%s]" % (rel, lineno, severity, message.strip(), ident))
base = collections.Counter()
for line in open(baseline_path):
    line = line.strip()
    if line and not line.startswith("#"):
        base[line] += 1
new, gone = [], []
for key, where in sorted(found.items()):
    extra = len(where) - base.get(key, 0)
    if extra > 0:
        new.extend(where[-extra:] if base.get(key, 0) else where)
for key, n in sorted(base.items()):
    if len(found.get(key, [])) < n:
        gone.append(key)
total = sum(len(v) for v in found.values())
print("# %d findings, %d of them in the baseline (%d lines)" % (total, total - len(new), sum(base.values())))
for w in sorted(v for vs in found.values() for v in vs):
    print("#   " + w)
if other:
    print("cppcheck said more than findings:\n  " + "\n  ".join(other[:20]))
    sys.exit(1)
bad = False
if new:
    print("FAIL: %d new cppcheck findings (fix them; if cppcheck is wrong, an inline "
          "'cppcheck-suppress ID' comment saying why):" % len(new))
    for w in new:
        print("  " + w)
    bad = True
if gone:
    print("FAIL: fixed findings still in tests/check/cppcheck-baseline.txt (delete these lines):")
    for k in gone:
        print("  " + k)
    bad = True
if bad:
    sys.exit(1)
print("ok - no new cppcheck findings")
PY
