#!/usr/bin/env python3
"""check_floors.py BUILD BUILD_DIR [FLOORS]: the tests a build registered,
counted per ctest label (ctest --show-only=json-v1), against the floors of
BUILD in tests/floors.txt. Fails (exit 1) when a label has fewer tests than
its floor, or when the build has a label without a floor; prints the counts,
then the attack suite's count of cases: each attack test prints "attack
cases: N passed", read back from ctest's log of the run (Testing/Temporary/
LastTest.log); an attack test that passed without that line fails the
check (it asserted nothing it could count).
Run by deploy/sova-dev after each build's ctest (docs/TESTING.md)."""
import collections
import json
import os
import re
import subprocess
import sys


def attack_cases(build_dir):
    """(cases by test, status by test) from the last ctest run in build_dir:
    for each test that ran, the N of its "attack cases: N passed" line and
    whether ctest said "Test Passed.". Read before any other ctest call,
    which would write the log anew."""
    cases, passed = {}, {}
    path = os.path.join(build_dir, "Testing", "Temporary", "LastTest.log")
    if not os.path.exists(path):
        return cases, passed
    current = None
    for line in open(path, errors="replace"):
        m = re.match(r"^\d+/\d+ Test: (\S+)$", line.rstrip("\n"))
        if m:
            current = m.group(1)
            continue
        if current is None:
            continue
        m = re.match(r"^attack cases: (\d+) passed$", line.rstrip("\n"))
        if m:
            cases[current] = int(m.group(1))
        elif line.startswith("Test Passed."):
            passed[current] = True
        elif line.startswith("Test Failed") or line.startswith("Test time"):
            passed.setdefault(current, False)
    return cases, passed


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    build, build_dir = sys.argv[1], sys.argv[2]
    floors_path = sys.argv[3] if len(sys.argv) == 4 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "floors.txt")
    floors = {}
    for n, line in enumerate(open(floors_path), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 3 or not words[2].isdigit():
            sys.exit("%s:%d: want 'build label floor', got %r" % (floors_path, n, line.strip()))
        if words[0] == build:
            floors[words[1]] = int(words[2])
    if not floors:
        sys.exit("%s: no floors for build '%s'" % (floors_path, build))

    cases, passed = attack_cases(build_dir)
    out = subprocess.run(["ctest", "--show-only=json-v1"], cwd=build_dir, check=True,
                         capture_output=True, text=True).stdout
    counts = collections.Counter()
    attack_tests = set()
    for test in json.loads(out).get("tests", []):
        for prop in test.get("properties", []):
            if prop.get("name") == "LABELS":
                for label in prop.get("value", []):
                    counts[label] += 1
                    if label == "attack":
                        attack_tests.add(test.get("name"))

    bad = []
    for label in sorted(set(floors) | set(counts)):
        have, floor = counts.get(label, 0), floors.get(label)
        if floor is None:
            bad.append("label %s has %d tests and no floor for build %s in %s"
                       % (label, have, build, floors_path))
            status = "NO FLOOR"
        elif have < floor:
            bad.append("label %s has %d tests, fewer than its floor %d" % (label, have, floor))
            status = "BELOW FLOOR"
        elif have > floor:
            status = "ok (raise the floor to %d in %s)" % (have, os.path.basename(floors_path))
        else:
            status = "ok"
        print("   %-5s %-9s %3d tests, floor %s: %s"
              % (build, label, have, "-" if floor is None else floor, status))
    if attack_tests:
        for t in sorted(attack_tests):
            if passed.get(t) and t not in cases:
                bad.append("%s passed without printing 'attack cases: N passed'" % t)
        ran = sorted(t for t in attack_tests if t in cases)
        print("   %-5s attack suite: %d cases passed in %d of %d tests (%s)%s"
              % (build, sum(cases[t] for t in ran), len(ran), len(attack_tests),
                 ", ".join("%s %d" % (t.split("/")[-1], cases[t]) for t in ran),
                 "" if len(ran) == len(attack_tests) else
                 "; not run or failed: " + ", ".join(sorted(attack_tests - set(ran)))))
    for b in bad:
        print("FAIL: %s build: %s" % (build, b))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
