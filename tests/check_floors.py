#!/usr/bin/env python3
"""check_floors.py BUILD BUILD_DIR [FLOORS]: the tests a build registered,
counted per ctest label (ctest --show-only=json-v1), against the floors of
BUILD in tests/floors.txt. Fails (exit 1) when a label has fewer tests than
its floor, or when the build has a label without a floor; prints the counts.
Run by deploy/sova-dev after each build's ctest (docs/TESTING.md)."""
import collections
import json
import os
import subprocess
import sys


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

    out = subprocess.run(["ctest", "--show-only=json-v1"], cwd=build_dir, check=True,
                         capture_output=True, text=True).stdout
    counts = collections.Counter()
    for test in json.loads(out).get("tests", []):
        for prop in test.get("properties", []):
            if prop.get("name") == "LABELS":
                for label in prop.get("value", []):
                    counts[label] += 1

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
    for b in bad:
        print("FAIL: %s build: %s" % (build, b))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
