"""A mutation fuzzer over the valid specs: random key, value, line and byte edits, wrong
types, huge numbers, deep nesting, unicode, empty files, binary garbage, large files
and alias bombs. Used by tests/spec/test_fuzz_cli.py and benchmarks/fuzz.py."""
from __future__ import annotations

import copy
import random

import yaml

WEIRD_VALUES = [None, True, -1, 0, 10**30, -(10**30), 1e308, float("nan"), "", "x" * 1000, "ünï©ødé ✓",
                [], {}, [1, 2, 3], {"type": "Dense"}, "../../etc/passwd", "!!python/object:os.system", 3.5]


def walk_paths(node, path=(), depth=40):
    """Every path into the document, down to `depth` levels (mutations nest values deeply)."""
    yield path
    if depth == 0:
        return
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk_paths(v, path + (k,), depth - 1)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_paths(v, path + (i,), depth - 1)


def _structural(doc, rng: random.Random):
    paths = [p for p in walk_paths(doc) if p]
    path = rng.choice(paths)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    op = rng.choice(["value", "value", "key", "delete", "duplicate", "nest"])
    if op == "value":
        parent[path[-1]] = rng.choice(WEIRD_VALUES)
    elif op == "key" and isinstance(parent, dict):
        parent[rng.choice(["activaton", "units ", "Type", "layers", "ünits", "1"])] = parent.pop(path[-1])
    elif op == "delete":
        del parent[path[-1]]
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[path[-1]]))
    elif op == "nest":
        value = parent[path[-1]]
        for _ in range(rng.randint(1, 30)):
            value = [value] if rng.random() < 0.5 else {"a": value}
        parent[path[-1]] = value
    return doc


def mutate(text: str, rng: random.Random) -> str:
    """One mutated variant of a spec's text."""
    kind = rng.choice(["structure", "structure", "structure", "bytes", "lines", "special"])
    if kind == "structure":
        doc = yaml.safe_load(text)
        for _ in range(rng.randint(1, 3)):
            if not isinstance(doc, (dict, list)) or not doc:
                break
            doc = _structural(doc, rng)
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if kind == "bytes":
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(chars) + 1)
            op = rng.random()
            if op < 0.4:
                chars.insert(i, chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)])))
            elif op < 0.8 and chars:
                del chars[min(i, len(chars) - 1)]
            elif chars:
                chars[min(i, len(chars) - 1)] = rng.choice("{}[]:,-&*!|>'\"#%@` \t\n")
        return "".join(chars)
    if kind == "lines":
        lines = text.splitlines()
        for _ in range(rng.randint(1, 4)):
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            op = rng.random()
            if op < 0.33:
                lines[i], lines[j] = lines[j], lines[i]
            elif op < 0.66:
                lines.insert(i, lines[j])
            else:
                lines[i] = " " * rng.randint(0, 6) + lines[i].lstrip()
        return "\n".join(lines)
    return rng.choice([
        "", "\n\n", "\x00\x01\x02\xff" * 10, "[" * 2000 + "]" * 2000, "a: " + "{b: " * 500 + "1" + "}" * 500,
        "x: &a [" + ",".join(['"lol"'] * 20) + "]\n" + "".join(
            f"x{i}: &a{i} [" + ",".join([f"*{'a' if i == 0 else f'a{i - 1}'}"] * 20) + "]\n" for i in range(8)),
        text + "\n" + "# padding\n" * 200_000,
        "input: {shape: [28, 28, 1]}\nlayers:\n" + "  - Dense: {units: 1000000000}\n" * 3,
        "input: {shape: [" + ", ".join(["99999"] * 8) + "]}\nlayers: [Flatten, {Dense: {units: 99999999}}]\n",
    ])
