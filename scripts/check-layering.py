#!/usr/bin/env python3
"""The folder layering check (DESIGN.md "Layout", docs/dev/architecture.md).

Reads every `#include "folder/…"` in the product folders and fails when
  - a folder includes one of a higher layer (or a peer of its own layer), or
  - the include graph between sub-folders (actors/guest, drill/workload, …)
    has a cycle.
Prints each offending include as FILE:LINE: and exits 1; exits 0 otherwise.
"""
import pathlib
import re
import sys

# Lowest first. A folder may include its own files and any lower layer's.
LAYERS = [
    ["net"],
    ["channel", "topology", "metrics"],
    ["actors"],
    ["agents"],
    ["orchestrator"],
    ["drill"],
    ["api"],
    ["cli"],
]
RANK = {folder: rank for rank, folders in enumerate(LAYERS) for folder in folders}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SOURCES = (".hpp", ".cpp", ".h", ".cc")


def unit(path: str) -> str:
    """The sub-folder a file belongs to: actors/guest/x.hpp → actors/guest."""
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def main(root: pathlib.Path) -> int:
    problems = []
    edges = {}  # unit → {unit: first "file:line" that made the edge}
    for folder in RANK:
        for f in sorted((root / folder).rglob("*")):
            if f.suffix not in SOURCES:
                continue
            rel = f.relative_to(root).as_posix()
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = m.group(1)
                top = target.split("/")[0]
                if top not in RANK:
                    continue  # a generated header (visorlab/v1/…) or a sibling file
                if top != folder and RANK[top] >= RANK[folder]:
                    problems.append(f"{rel}:{n}: {folder}/ includes {target}: {top}/ is not below {folder}/")
                a, b = unit(rel), unit(target)
                if a != b:
                    edges.setdefault(a, {}).setdefault(b, f"{rel}:{n}")
    # Cycles between sub-folders: a DFS that reports each back edge's cycle once.
    state, stack, seen_cycles = {}, [], set()

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v, where in sorted(edges.get(u, {}).items()):
            if state.get(v) == "open":
                cycle = stack[stack.index(v):] + [v]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    problems.append(f"{where}: include cycle: {' -> '.join(cycle)}")
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for u in sorted(edges):
        if u not in state:
            visit(u)
    for p in problems:
        print(p)
    if problems:
        print(f"layering: {len(problems)} problem(s); the order is {' -> '.join('/'.join(l) for l in LAYERS)}")
        return 1
    print("layering: ok (" + " -> ".join("/".join(l) for l in LAYERS) + ")")
    return 0


def self_test() -> int:
    """The check catches what it is for: an upward include and a cycle."""
    import contextlib
    import io
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = pathlib.Path(d)
        files = {
            "channel/a.hpp": '#include "channel/sub/b.hpp"\n',
            "channel/sub/b.hpp": '#include "channel/a.hpp"\n',  # a cycle: channel <-> channel/sub
            "orchestrator/c.cpp": '#include "drill/d.hpp"\n',  # upward
            "drill/d.hpp": '#include "orchestrator/c.hpp"\n#include "visorlab/v1/x.pb.h"\n',  # fine
        }
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(root)
        text = out.getvalue()
        ok = (rc == 1 and "orchestrator/c.cpp:1: orchestrator/ includes drill/d.hpp" in text
              and "include cycle: channel -> channel/sub -> channel" in text)
        print(text + ("self-test: ok" if ok else "self-test: FAILED"))
        return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)))
