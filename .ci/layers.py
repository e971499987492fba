#!/usr/bin/env python3
"""The library's parts import only from their own layer or the layers below it, in the order
ARCHITECTURE.md gives, and its modules import each other in no circle.

The layer list is the fenced `layers` block of ARCHITECTURE.md: one line per layer, bottom up,
`name: part part ...`. A part is a flat module (`health`) or a folder (`check`); a module
belongs to the longest listed part that is itself or one of its folders, and a module that
belongs to no part fails the check, so a new file or folder gets a place on purpose. Modules
of one part may import each other freely (a type and its layer or builder side by side);
between parts, an import may not go to a higher layer. Imports are followed through
re-exports (`use crate::Health` is an import of the module that defines `Health`).

Usage: python3 .ci/layers.py [SRC_DIR] [ARCHITECTURE_MD]
"""
import os
import re
import sys


def read_layers(doc):
    text = open(doc, encoding="utf-8").read()
    block = re.search(r"^```layers\n(.*?)^```", text, flags=re.S | re.M)
    if not block:
        sys.exit(f"{doc}: no ```layers block")
    layers = []
    for line in block.group(1).splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, _, parts = line.partition(":")
        layers.append((name.strip(), parts.split()))
    return layers


def modules(root):
    """Module path (a tuple, () for the crate root) -> file."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            parts = tuple(os.path.relpath(path, root)[:-3].split(os.sep))
            if parts[-1] in ("mod", "lib"):
                parts = parts[:-1]
            found[parts] = path
    return found


def strip(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    # Unit tests may reach anywhere.
    return re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", text)[0]


def expand(tree):
    """`a::{b, c::{d, self}}` -> [(["a", "b"], "b"), (["a", "c", "d"], "d"), (["a", "c"], "c")]."""
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        path, _, alias = tree.partition(" as ")
        segs = [s.strip() for s in path.split("::") if s.strip()]
        if not segs or segs[-1] == "*":
            return []
        if segs[-1] == "self":
            segs = segs[:-1]
        return [(segs, alias.strip() or (segs[-1] if segs else ""))]
    prefix = [s for s in tree[:brace].split("::") if s.strip()]
    inner = tree[brace + 1:tree.rfind("}")]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in items:
        if item.strip():
            for segs, alias in expand(item):
                out.append((prefix + segs, alias))
    return out


def split_inline(text, here):
    """A file's text without its inline `mod name { ... }` blocks, and those blocks with the
    module path their paths are written from."""
    pieces, out, pos = [], [], 0
    for match in re.finditer(r"\bmod\s+(\w+)\s*\{", text):
        if match.start() < pos:
            continue
        depth, end = 1, match.end()
        while end < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        out.append(text[pos:match.start()])
        inner, nested = split_inline(text[match.end():end - 1], here + [match.group(1)])
        pieces.append((tuple(here + [match.group(1)]), inner))
        pieces.extend(nested)
        pos = end
    out.append(text[pos:])
    return "".join(out), pieces


USE = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]*);")
PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def absolute(segs, here, known):
    """A path as written in module `here` -> a path from the crate root, or None if external."""
    segs = list(segs)
    if not segs:
        return None
    if segs[0] == "crate":
        return segs[1:]
    base = list(here)
    if segs[0] in ("self", "super"):
        while segs and segs[0] in ("self", "super"):
            if segs.pop(0) == "super":
                base = base[:-1]
        return base + segs
    if tuple(base + segs[:1]) in known:
        return base + segs
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "src"
    doc = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(root)),
                                                            "ARCHITECTURE.md")
    layers = read_layers(doc)
    known = modules(root)
    texts = {m: strip(open(p, encoding="utf-8").read()) for m, p in known.items()}

    # What each module's `use` statements bring in: its names, followed by the paths below.
    names = {m: {} for m in known}
    uses = {m: [] for m in known}
    inline = {m: [] for m in known}
    for m, text in list(texts.items()):
        outer, pieces = split_inline(text, list(m))
        texts[m] = outer
        inline[m] = pieces
        for match in USE.finditer(outer):
            for segs, alias in expand(match.group(1)):
                path = absolute(segs, m, known)
                if path is not None:
                    uses[m].append(path)
                    if alias and alias != "_":
                        names[m][alias] = path
        for here, piece in pieces:
            for match in USE.finditer(piece):
                for segs, _ in expand(match.group(1)):
                    path = absolute(segs, here, known)
                    if path is not None:
                        uses[m].append(path)

    def resolve(path, depth=0):
        n = len(path)
        while n > 0 and tuple(path[:n]) not in known:
            n -= 1
        module, rest = tuple(path[:n]), path[n:]
        if rest and rest[0] in names[module] and depth < 16:
            return resolve(names[module][rest[0]] + rest[1:], depth + 1)
        return module

    graph = {}
    for m, text in texts.items():
        targets = {resolve(path) for path in uses[m]}
        for here, piece in [(m, text)] + inline[m]:
            for match in PATH.finditer(USE.sub("", piece)):
                path = absolute([match.group(1)] + match.group(2).strip(":").split("::"), here, known)
                targets.add(resolve(path))
        # A module re-exports its own children; that is no import.
        graph[m] = {t for t in targets if t != m and t[:len(m)] != m}

    def show(module):
        return "/".join(module) or "lib"

    part_rank = {}
    for i, (_, parts) in enumerate(layers):
        for part in parts:
            part_rank[tuple(part.split("/")) if part != "lib" else ()] = i

    def part_of(module):
        for n in range(len(module), -1, -1):
            if module[:n] in part_rank and (n > 0 or module == ()):
                return module[:n]
        return None

    problems = []
    for module in sorted(known):
        if part_of(module) is None:
            problems.append(f"{show(module)}: no layer (give it a part in ARCHITECTURE.md's layers block)")
    for module, targets in sorted(graph.items()):
        mine = part_of(module)
        for target in sorted(targets):
            theirs = part_of(target)
            if mine is None or theirs is None or mine == theirs:
                continue
            if part_rank[theirs] > part_rank[mine]:
                problems.append(
                    f"{show(module)} ({layers[part_rank[mine]][0]}) imports {show(target)}, "
                    f"which stands above it ({layers[part_rank[theirs]][0]})"
                )
    # Circles, by depth-first search.
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circle = stack[stack.index(nxt):] + [nxt]
                problems.append("import circle: " + " -> ".join(show(x) for x in circle))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(known)} modules in {len(part_rank)} parts and {len(layers)} layers, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
