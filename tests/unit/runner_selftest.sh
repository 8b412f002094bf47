#!/usr/bin/env bash
# runner_selftest.sh BINARY: the CUnit runner (cunit_main.c) fails a unit
# test binary whose suite init failed, even though the other suite ran and
# passed. BINARY is cunit_runner_selftest (selftest/failing_init.c).
set -uo pipefail
bin=${1:?usage: runner_selftest.sh BINARY}
out=$("$bin" 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
fail() { echo "FAIL: $*" >&2; exit 1; }
[ $rc -eq 1 ] || fail "the runner exited $rc for a suite whose init failed; expected 1"
grep -q "suite 'selftest_broken_fixture': init failed" <<<"$out" ||
  fail "the runner did not name the suite whose init failed"
grep -Eq "Test: passes \.\.\.passed" <<<"$out" || fail "the other suite's test did not run and pass"
grep -q "a suite whose init failed must not run its tests" <<<"$out" &&
  fail "CUnit ran the tests of a suite whose init failed"
echo "ok - the runner exits 1 when a suite's init fails, although the other suite passed"
