"""Property-based tests: random and mutated YAML gives a clean diagnostic, never a traceback."""
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerc
from layerc.spec import SpecError, parse_spec

from .mutate import walk_paths

ROOT = Path(__file__).resolve().parents[2]
SPECS = [p.read_text() for p in sorted((ROOT / "specs").glob("*.yaml"))]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text: str):
    """Parse and compile; only SpecError may come out, and its diagnostics are complete."""
    try:
        layerc.build(parse_spec(text, "f.yaml"))
    except SpecError as e:
        assert e.diagnostics
        for d in e.diagnostics:
            assert d.message and d.file
            assert (d.line is None) == (d.col is None)
            assert d.format().startswith(d.file)
        return False
    return True


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=12)


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    check(text)


@FUZZ
@given(values)
def test_random_yaml_documents(doc):
    check(yaml.safe_dump(doc))


def _set(doc, path, value):
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value


@FUZZ
@given(st.sampled_from(range(len(SPECS))), st.data())
def test_mutated_valid_specs(index, data):
    doc = yaml.safe_load(SPECS[index])
    paths = [p for p in walk_paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        kind = data.draw(st.sampled_from(["value", "key", "delete"]))
        try:
            parent = doc
            for p in path[:-1]:
                parent = parent[p]
            if kind == "value":
                _set(doc, path, data.draw(values))
            elif kind == "key" and isinstance(parent, dict):
                parent[data.draw(st.text(min_size=1, max_size=12))] = parent.pop(path[-1])
            elif kind == "delete":
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        paths = [p for p in walk_paths(doc) if p]
        if not paths:
            break
    check(yaml.safe_dump(doc, sort_keys=False))


@FUZZ
@given(st.sampled_from(range(len(SPECS))), st.data())
def test_byte_and_line_edits(index, data):
    text = SPECS[index]
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "delete", "line"]))
        if op == "insert":
            text = text[:pos] + data.draw(st.text(max_size=5)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + data.draw(st.integers(1, 10)):]
        else:
            lines = text.splitlines()
            if lines:
                i = data.draw(st.integers(0, len(lines) - 1))
                j = data.draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    check(text)


def test_deep_nesting_and_huge_numbers():
    assert not check("[" * 5000 + "]" * 5000)
    assert not check("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200)))
    assert not check("input: {shape: [99999999999999999999999]}\nlayers: [Flatten]\n")
    assert not check("input: {shape: [784]}\nlayers:\n  - Dense: {units: 1e400}\n")
