#!/usr/bin/env bash
# test_hardening.sh - the release binaries of the build under test
# (sova-supernode, sova-peer) carry the hardening Debian builds its packages
# with (CMakeLists.txt, SOVA_HARDEN): full RELRO with immediate binding
# (FLAGS BIND_NOW or FLAGS_1 NOW, and a GNU_RELRO segment), a
# position-independent executable (ELF type DYN, with an interpreter),
# the stack protector (__stack_chk_fail referenced) and fortified libc calls
# (__*_chk referenced). Prints what it found for each binary.
source "$(dirname "$0")/lib.sh"
: "${SOVA_BIN:?SOVA_BIN must point at the build directory}"
command -v readelf >/dev/null || fail "readelf is not installed (Debian package binutils)"
[ "${SOVA_HARDEN:-ON}" != OFF ] ||
  echo "# this build was configured without hardening (SOVA_HARDEN off or a sanitizer): expect failures"

bad=0
for bin in "$SOVA_BIN/supernode/sova-supernode" "$SOVA_BIN/ordinary/sova-peer"; do
  [ -x "$bin" ] || fail "no $bin: build first"
  name=$(basename "$bin")
  missing=()
  type=$(readelf -h "$bin" | sed -n 's/^ *Type: *\([A-Z]*\).*/\1/p')
  dyn=$(readelf -d "$bin")
  flags=$(sed -n 's/.*(FLAGS) *//p' <<<"$dyn" | xargs)
  flags1=$(sed -n 's/.*(FLAGS_1) *Flags: *//p' <<<"$dyn" | xargs)
  segs=$(readelf -lW "$bin")
  syms=$(readelf --dyn-syms -W "$bin" | awk '$7 == "UND" { sub(/@.*/, "", $8); print $8 }' | sort -u)
  chk=$(grep -E '^__[a-z0-9_]+_chk$' <<<"$syms" | grep -vx __stack_chk_fail | paste -sd' ' || true)
  echo "# $name: type $type; FLAGS ${flags:--}; FLAGS_1 ${flags1:--};" \
    "GNU_RELRO $(grep -q GNU_RELRO <<<"$segs" && echo yes || echo no);" \
    "interpreter $(grep -q 'Requesting program interpreter' <<<"$segs" && echo yes || echo no);" \
    "__stack_chk_fail $(grep -qx __stack_chk_fail <<<"$syms" && echo yes || echo no);" \
    "fortified: ${chk:-none}"
  [ "$type" = DYN ] && grep -q 'Requesting program interpreter' <<<"$segs" ||
    missing+=("PIE (ELF type $type, wanted DYN with an interpreter: -fPIE -pie)")
  [[ " $flags " == *" BIND_NOW "* || " $flags1 " == *" NOW "* ]] ||
    missing+=("BIND_NOW (no FLAGS BIND_NOW, no FLAGS_1 NOW: -Wl,-z,now)")
  grep -q GNU_RELRO <<<"$segs" || missing+=("GNU_RELRO (no such segment: -Wl,-z,relro)")
  grep -qx __stack_chk_fail <<<"$syms" ||
    missing+=("stack protector (__stack_chk_fail not referenced: -fstack-protector-strong)")
  [ -n "$chk" ] || missing+=("fortified calls (no __*_chk referenced: -D_FORTIFY_SOURCE=2 with -O2)")
  if [ ${#missing[@]} -gt 0 ]; then
    for m in "${missing[@]}"; do echo "FAIL: $name lacks $m" >&2; done
    bad=1
  else
    ok "$name: PIE, full RELRO (BIND_NOW), stack protector, fortified ($(wc -w <<<"$chk") _chk functions)"
  fi
done
[ $bad -eq 0 ] || fail "the release binaries are not hardened as CMakeLists.txt promises"
