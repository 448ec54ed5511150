#!/usr/bin/env python3
"""The layout targets of docs/ARCHITECTURE.md, measured on a build.

  python3 scripts/archcheck.py [BUILD_DIR] [--strict]

Reads every object under BUILD_DIR/{daemon,nbd,proto,utils} with `nm`: a
file calls another when it uses a symbol the other defines.  Prints the
circles of files that call each other (strongly connected groups larger
than one), the files directly in daemon/, and the .c files over the line
limit.  With --strict, exits 1 if a circle is larger than two files, daemon/
holds more than 15 files, or a .c file is over 900 lines."""
import os
import subprocess
import sys

MAX_CIRCLE, MAX_DAEMON_FILES, MAX_LINES = 2, 15, 900
DIRS = ("daemon", "nbd", "proto", "utils")


def objects(build):
    for top in DIRS:
        for root, _, files in os.walk(os.path.join(build, top)):
            for f in sorted(files):
                if f.endswith(".o"):
                    yield os.path.join(root, f)


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRV":
            defined.add(parts[2])
    return defined, used


def call_graph(build):
    defs, uses = {}, {}
    for obj in objects(build):
        name = os.path.relpath(obj, build)[:-2] + ".c"
        defs[name], uses[name] = symbols(obj)
    owner = {s: f for f, ds in defs.items() for s in ds}
    return {f: {owner[s] for s in us if s in owner and owner[s] != f} for f, us in uses.items()}


def circles(graph):
    """Tarjan's strongly connected components, iteratively."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = n[0]; n[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = n[0]; n[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main():
    args = [a for a in sys.argv[1:] if a != "--strict"]
    build = args[0] if args else "build"
    bad = []
    comps = circles(call_graph(build))
    for c in sorted(comps, key=len, reverse=True):
        print(f"circle of {len(c)}: {' '.join(c)}")
        if len(c) > MAX_CIRCLE:
            bad.append(f"a circle of {len(c)} files")
    flat = [f for f in os.listdir("daemon") if os.path.isfile(os.path.join("daemon", f))]
    print(f"files directly in daemon/: {len(flat)} (at most {MAX_DAEMON_FILES})")
    if len(flat) > MAX_DAEMON_FILES:
        bad.append(f"{len(flat)} files in daemon/")
    for top in DIRS:
        for root, _, files in os.walk(top):
            for f in sorted(files):
                if f.endswith(".c"):
                    p = os.path.join(root, f)
                    with open(p) as fh:
                        lines = sum(1 for _ in fh)
                    if lines > MAX_LINES:
                        print(f"{p}: {lines} lines (at most {MAX_LINES})")
                        bad.append(f"{p} over {MAX_LINES} lines")
    largest = max((len(c) for c in comps), default=1)
    print(f"archcheck: largest circle {largest} files, {len(flat)} files in daemon/, "
          f"{len(bad)} target(s) missed")
    return 1 if bad and "--strict" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
