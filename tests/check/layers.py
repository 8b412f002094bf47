#!/usr/bin/env python3
"""layers.py - hold the tree to its architecture (docs/SUPERNODE.md).

Checks, each printed with what it found:
 1. Calls between files, from the object files (nm): a file-level call
    cycle fails, except two files that are one module (both include the
    same private header, one that #errors when included from elsewhere).
    Run for each library: common/, nat/, supernode/, ordinary/.
 2. Layers between libraries: common/ calls nothing of nat/, supernode/,
    ordinary/; nat/ nothing of supernode/ or ordinary/; the two daemons
    nothing of each other.
 3. supernode/'s folders call and include only the folders below them
    (FOLDER_DEPS), so the folder graph has no cycle.
 4. The pure modules (PURE) include, directly or not, no libevent, no
    link.h, no evloop.h: found with the compiler's own dependency list
    (cc -MM with the flags of compile_commands.json).
 5. No clock read (clock_gettime, gettimeofday, time()) outside common/:
    time comes in as now_ms (common/clock.h).

Usage: layers.py SOURCE_DIR BUILD_DIR. Exit 0 when all hold, 1 otherwise.
"""
import collections
import glob
import json
import os
import re
import shlex
import subprocess
import sys

# supernode/'s folders, lowest first, and the folders each may use.
FOLDER_DEPS = {
    "index": set(),
    "guard": {"index"},  # the keyed hash table (sn_hashtab.h)
    "core": {"guard", "index"},
    "federation": {"core", "guard", "index"},
    "search": {"federation", "core", "guard", "index"},
    "peer": {"search", "federation", "core", "guard", "index"},
    "relay": {"search", "federation", "core", "guard", "index"},
    "credit": {"relay", "federation", "core", "guard", "index"},
    "daemon": {"peer", "relay", "credit", "search", "federation", "core", "guard", "index"},
}

# Sans-I/O modules: time and input in, decisions out.
PURE = [
    "supernode/guard/*.c",
    "supernode/index/*.c",
    "supernode/search/sn_route.c",
    "supernode/search/sn_route_merge.c",
    "supernode/search/sn_summary.c",
    "supernode/search/sn_kwdir.c",
    "supernode/search/sn_kwdir_query.c",
    "supernode/federation/sn_kad.c",
    "supernode/federation/sn_member.c",
    "supernode/federation/sn_member_probe.c",
    "supernode/relay/sn_relay_flow.c",
    "supernode/credit/sn_credit.c",
    "supernode/credit/sn_credit_place.c",
    "supernode/credit/sn_flow.c",
    "supernode/credit/sn_ledger.c",
    "supernode/credit/sn_ring.c",
    "nat/nat_map_fsm.c",
]
IMPURE_HEADERS = re.compile(r"(/event2/|/link\.h$|/link_int\.h$|/evloop\.h$|/sn_ctx\.h$)")

LIBS = ["common", "nat", "supernode", "ordinary"]
# Which libraries each may call.
LIB_DEPS = {
    "common": set(),
    "nat": {"common"},
    "supernode": {"common", "nat"},
    "ordinary": {"common", "nat"},
}
CLOCK_READ = re.compile(r"\b(clock_gettime|gettimeofday|ftime)\s*\(|\btime\s*\(\s*(NULL|0|&)")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def objects(src, build, lib):
    """The object files of lib's sources (a stale object of a file moved
    away is left out)."""
    root = os.path.join(build, lib, "CMakeFiles", "sova_%s.dir" % lib)
    objs = sorted(glob.glob(os.path.join(root, "**", "*.c.o"), recursive=True))
    out = {}
    for o in objs:
        name = os.path.relpath(o, root)[: -len(".c.o")]
        if os.path.exists(os.path.join(src, lib, name + ".c")):
            out[name] = o
    return out


def nm_symbols(path):
    out = subprocess.run(["nm", "-P", path], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        if f[1] in "TDBRC":
            defined.add(f[0])
        elif f[1] == "U":
            undefined.add(f[0])
    return defined, undefined


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(100000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def private_headers(src, lib, files):
    """For each file, the private headers it includes (those that #error
    when included from elsewhere)."""
    private = {}
    for h in glob.glob(os.path.join(src, lib, "**", "*.h"), recursive=True):
        with open(h) as f:
            if re.search(r"^#error", f.read(), re.M):
                private[os.path.basename(h)] = h
    uses = {}
    for name in files:
        path = os.path.join(src, lib, name + ".c")
        with open(path) as f:
            incs = re.findall(r'^#include "([^"]+)"', f.read(), re.M)
        uses[name] = {i for i in incs if i in private}
    return uses


def check_calls(src, build):
    defs = {}  # symbol -> (lib, file)
    undef = {}
    for lib in LIBS:
        objs = objects(src, build, lib)
        if not objs:
            fail("no object files for %s/ under %s: build first" % (lib, build))
            continue
        for name, path in objs.items():
            d, u = nm_symbols(path)
            for s in d:
                defs[s] = (lib, name)
            undef[(lib, name)] = u
    graph = collections.defaultdict(set)
    for node, syms in undef.items():
        graph[node]
        for s in syms:
            if s in defs and defs[s] != node:
                graph[node].add(defs[s])
    # 2. layers between libraries
    for (lib, name), targets in graph.items():
        for tlib, tname in targets:
            if tlib != lib and tlib not in LIB_DEPS[lib]:
                fail("%s/%s calls %s/%s: %s/ may not call %s/" % (lib, name, tlib, tname, lib, tlib))
    # 1. file-level cycles, per library
    largest = 0
    for lib in LIBS:
        sub = {n: {t for t in ts if t[0] == lib} for n, ts in graph.items() if n[0] == lib}
        files = [n[1] for n in sub]
        uses = private_headers(src, lib, files)
        for comp in sccs(sub):
            if len(comp) < 2:
                continue
            names = [c[1] for c in comp]
            largest = max(largest, len(comp))
            shared = set.intersection(*(uses[n] for n in names))
            if len(comp) == 2 and shared:
                print("ok: %s/: %s call each other, one module (private %s)"
                      % (lib, " and ".join(names), ", ".join(sorted(shared))))
                continue
            fail("%s/: call cycle of %d files: %s" % (lib, len(comp), ", ".join(names)))
    print("largest file-level call cycle: %d files" % largest)
    return graph


def folder_of(name):
    return name.split("/")[0] if "/" in name else None


def check_folders(src, graph):
    # 3a. calls
    for (lib, name), targets in graph.items():
        if lib != "supernode" or folder_of(name) is None:
            continue
        f = folder_of(name)
        if f not in FOLDER_DEPS:
            fail("supernode/%s/ is not in the map (tests/check/layers.py FOLDER_DEPS)" % f)
            continue
        for tlib, tname in targets:
            t = folder_of(tname)
            if tlib == "supernode" and t and t != f and t not in FOLDER_DEPS[f]:
                fail("supernode/%s calls supernode/%s: %s/ may not call %s/" % (name, tname, f, t))
    # 3b. includes
    headers = {}
    for h in glob.glob(os.path.join(src, "supernode", "*", "*.h")):
        headers[os.path.basename(h)] = os.path.basename(os.path.dirname(h))
    n_includes = 0
    for path in sorted(glob.glob(os.path.join(src, "supernode", "*", "*.[ch]"))):
        f = os.path.basename(os.path.dirname(path))
        with open(path) as fh:
            for inc in re.findall(r'^#include "([^"]+)"', fh.read(), re.M):
                t = headers.get(inc)
                if t is None or t == f:
                    continue
                n_includes += 1
                if t not in FOLDER_DEPS.get(f, set()):
                    fail("supernode/%s/%s includes %s (%s/): %s/ may not use %s/"
                         % (f, os.path.basename(path), inc, t, f, t))
    print("supernode/ folders: %d includes across folders checked against the map" % n_includes)
    # the map itself must be acyclic
    order, seen = [], set()

    def dfs(f, path):
        if f in path:
            fail("the folder map has a cycle: %s" % " -> ".join(path + [f]))
            return
        if f in seen:
            return
        for t in sorted(FOLDER_DEPS[f]):
            dfs(t, path + [f])
        seen.add(f)
        order.append(f)

    for f in FOLDER_DEPS:
        dfs(f, [])
    print("supernode/ folders, lowest first: %s" % " < ".join(order))


def check_pure(src, build):
    ccj = os.path.join(build, "compile_commands.json")
    if not os.path.exists(ccj):
        fail("no %s (CMAKE_EXPORT_COMPILE_COMMANDS)" % ccj)
        return
    with open(ccj) as f:
        commands = {os.path.realpath(e["file"]): e for e in json.load(f)}
    checked = 0
    for pattern in PURE:
        for path in sorted(glob.glob(os.path.join(src, pattern))):
            e = commands.get(os.path.realpath(path))
            if e is None:
                fail("%s is not built (not in compile_commands.json)" % path)
                continue
            args = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
            keep = [a for a in args[1:] if a.startswith(("-I", "-D", "-std", "-isystem"))]
            dep = subprocess.run([args[0], "-MM", "-MG"] + keep + [path], capture_output=True,
                                 text=True, cwd=e["directory"])
            if dep.returncode != 0:
                fail("cannot list the includes of %s: %s" % (path, dep.stderr.strip()))
                continue
            deps = dep.stdout.replace("\\\n", " ").split()[2:]
            bad = sorted({os.path.relpath(d, src) if d.startswith(src) else d
                          for d in deps if IMPURE_HEADERS.search("/" + d)})
            checked += 1
            if bad:
                fail("%s is pure but includes %s" % (os.path.relpath(path, src), ", ".join(bad)))
    print("pure modules: %d files include no libevent, link.h or evloop.h" % checked)


def check_clock(src):
    n = 0
    for lib in ["nat", "supernode", "ordinary"]:
        for path in sorted(glob.glob(os.path.join(src, lib, "**", "*.[ch]"), recursive=True)):
            with open(path) as f:
                for no, line in enumerate(f, 1):
                    code = line.split("//")[0]
                    if CLOCK_READ.search(code) and not code.lstrip().startswith("*"):
                        fail("%s:%d reads the clock itself (use common/clock.h, pass now_ms): %s"
                             % (os.path.relpath(path, src), no, line.strip()))
            n += 1
    print("clock reads: none outside common/ (%d files of nat/, supernode/, ordinary/)" % n)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    src, build = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    graph = check_calls(src, build)
    check_folders(src, graph)
    check_pure(src, build)
    check_clock(src)
    if failures:
        print("%d architecture check(s) failed" % len(failures))
        return 1
    print("architecture: all checks hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
