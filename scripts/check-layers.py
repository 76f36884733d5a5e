#!/usr/bin/env python3
"""Checks that every include points at the same layer or a lower one, and that headers include
each other in no loop (docs/ARCHITECTURE.md).

Layers, lowest first; a folder of src/ or a public header belongs to one. Two folders of the same
rank (the HTTP server and MCP front ends) may not include each other. Run from the repository
root; exits 1 listing every include that runs upwards or sideways."""
import pathlib
import re
import sys

RANKS = {
    "core": 0, "image": 1, "policy": 2, "ops": 3, "model": 4, "backend": 5, "media": 6, "runtime": 7,
    "pipeline": 8, "service": 9, "server": 10, "mcp": 10, "front ends": 10,
}
PUBLIC = {
    "error": "core", "files": "core", "version": "core", "image": "image", "policy": "policy",
    "model": "model", "int8": "model", "backend": "backend", "upscaler": "runtime", "quality": "runtime",
    "video": "pipeline", "segments": "pipeline", "service": "service", "server": "front ends",
}


def layer_of(path: pathlib.Path) -> str:
    parts = path.parts
    if parts[0] == "include":
        return PUBLIC[path.stem]
    return parts[1]


def include_cycles(files):
    """Header include loops (which #pragma once would hide until a declaration goes missing)."""
    def resolve(name):
        for base in ("src", "include"):
            p = pathlib.Path(base) / name
            if p.exists():
                return p
        return None
    graph = {}
    for f in files:
        graph[f] = [t for t in (resolve(m) for m in re.findall(r'#include "([^"]+)"', f.read_text())) if t]
    problems, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                loop = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
                problems.append("include loop: " + " -> ".join(str(x) for x in loop))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for f in sorted(graph):
        if f not in state:
            visit(f, [f])
    return problems


def main() -> int:
    root = pathlib.Path(".")
    files = [p for p in root.glob("src/**/*") if p.suffix in (".cpp", ".hpp")]
    files += [p for p in root.glob("include/upres/*.hpp")]
    problems = []
    for f in files:
        here = layer_of(f)
        for n, line in enumerate(f.read_text().splitlines(), 1):
            m = re.match(r'#include "([^"]+)"', line)
            if not m:
                continue
            target = pathlib.Path(m.group(1))
            if target.parts[0] == "upres":
                there = PUBLIC.get(target.stem)
            else:
                there = target.parts[0]
            if there not in RANKS:
                problems.append(f"{f}:{n}: includes {target}, which belongs to no layer")
                continue
            sideways = RANKS[there] == RANKS[here] and there != here and there != "front ends"
            if RANKS[there] > RANKS[here] or sideways:
                problems.append(f"{f}:{n}: {here} includes {target} ({there}), a layer above or beside it")
    problems += include_cycles(files)
    for p in problems:
        print(p)
    if not problems:
        print(f"layers: {len(files)} files, every include points down or sideways within its layer")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
