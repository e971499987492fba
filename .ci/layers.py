#!/usr/bin/env python3
"""The library's modules import only from their own layer or the layers below it, in the
order CONTRIBUTING.md gives, and in no circle. Each module of src/ is listed here with its
layer; a module that is not listed fails the check, so a new file gets a place on purpose.

Usage: python3 .ci/layers.py [SRC_DIR]
"""
import os
import re
import sys

# Bottom up. Within a layer, modules may import each other, but not in a circle.
LAYERS = [
    ("words", ["vocabulary", "error", "cache", "capped", "progress"]),
    ("observer", ["changes", "metrics", "observer"]),
    ("lifecycle, engine, shutdown", ["lifecycle", "check", "check/cell", "check/engine", "shutdown", "drain",
                                     "signals", "fleet"]),
    ("ready-made checks, built on the public check API",
     ["checks", "checks/tcp", "checks/dns", "checks/http", "checks/postgres", "checks/mysql",
      "checks/redis", "checks/rabbitmq", "checks/grpc", "checks/disk", "checks/memory",
      "checks/tls"]),
    ("report", ["report"]),
    ("rendering, gRPC wire and names", ["render", "render/format", "render/json", "render/text",
                                        "render/html", "grpc", "grpc/wire", "grpc/messages",
                                        "grpc/names", "grpc/body"]),
    ("shared state, matching, a matched request's answer",
     ["shared", "probe", "request", "grpc/answer"]),
    ("service, future, body", ["service", "future", "body"]),
    ("layer", ["layer"]),
    ("builder", ["builder"]),
    ("server", ["server"]),
    ("handle", ["health"]),
    ("crate root", ["lib"]),
]


def modules(root):
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            found["/".join(parts)] = path
    return found


def imports(module, path, known):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"//[^\n]*", "", text)
    # Unit tests may reach anywhere.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]
    own = module.split("/") if module != "lib" else []
    base = own if path.endswith(("mod.rs", "lib.rs")) else own[:-1]
    targets = set()

    def resolve(parts):
        for n in range(len(parts), 0, -1):
            name = "/".join(parts[:n])
            if name in known:
                return name
        return None

    for match in re.finditer(r"\bcrate((?:::\w+)+)", text):
        targets.add(resolve(match.group(1).strip(":").split("::")))
    for match in re.finditer(r"\bsuper((?:::\w+)+)", text):
        parent = base[:-1] if path.endswith("mod.rs") else base
        targets.add(resolve(parent + match.group(1).strip(":").split("::")))
    parent = base[:-1] if path.endswith("mod.rs") else base
    for match in re.finditer(r"use\s+(crate|super)::\{([^;]*)\};", text, flags=re.S):
        start = [] if match.group(1) == "crate" else parent
        for item in re.split(r",\s*", match.group(2)):
            head = item.strip().split("::")
            if head and head[0]:
                found = resolve(start + [p for p in head if re.match(r"^\w+$", p)])
                targets.add(found or (resolve(start) if start else None))
    # A module re-exports its own children; that is no import upward.
    return {t for t in targets if t and t != module and not t.startswith(module + "/")}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    known = modules(root)
    rank = {}
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            rank[name] = i
    problems = []
    for module in sorted(known):
        if module not in rank:
            problems.append(f"{module}: no layer (add it to LAYERS in .ci/layers.py)")
    graph = {m: imports(m, p, known) for m, p in known.items()}
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if module in rank and target in rank and rank[target] > rank[module]:
                problems.append(
                    f"{module} ({LAYERS[rank[module]][0]}) imports {target}, "
                    f"which stands above it ({LAYERS[rank[target]][0]})"
                )
    # Circles, by depth-first search.
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                problems.append("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(known)} modules in {len(LAYERS)} layers, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
