"""Specs compared by meaning: what changed between two validated specs, and a canonical form.

Formatting, comments, key order, the three layer forms and spelt-out defaults are no
change: both specs are flattened, from their validated models, into `path: value`
settings (`layers.dense_1.units: 64`, `train.optimizer.learning_rate: 0.01`) in the
models' own field order. Layers are matched by meaning rather than by position: explicit
names first, then the longest run of identical layers (so a layer inserted in the middle
is one added layer, not a cascade of changes under shifted default names), then layers of
the same type in the gaps; a matched layer whose place in the order changed is moved.
No numpy here: the parameter and MAC counts of a diff are computed by the caller.
"""
from __future__ import annotations

import difflib
import json
import typing
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel

from .names import default_names

_TAGS = ("type", "format", "dataset")  # the field that names a model's kind is always kept
_NO_VALUE = object()


@dataclass
class Change:
    """One difference: kind is changed, added, removed, moved or renamed.

    `path` is a setting's dotted path (`train.epochs`) or, for layers, the layer's name
    then its argument (`dense_1.units`); `old`/`new` are values, or positions for a move.
    """

    kind: str
    path: str
    old: Any = None
    new: Any = None
    layer: bool = False
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# -- the canonical settings of a spec -------------------------------------------------------
def _plain(value):
    """A validated value with tuples as lists (models stay models, for `_flat`)."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _fields(model: BaseModel, defaults: bool) -> dict:
    """A model's fields, the required ones first, then in declaration order: the tag, and the
    others unless at their default (with defaults, all of them); never the layer's name."""
    out = {}
    fields = type(model).model_fields
    for name in sorted(fields, key=lambda n: not fields[n].is_required()):  # units, filters, ... first
        field = fields[name]
        size = _is_size(field.annotation)
        value = _size(_plain(getattr(model, name)), size)
        if name == "name" or (not defaults and name not in _TAGS and not field.is_required() and _same(
                value, _size(_plain(field.get_default(call_default_factory=True)), size))):
            continue
        out[name] = value
    return out


def _is_size(annotation) -> bool:
    """Whether a field is Keras's int-or-tuple (`kernel_size: 3` or `[3, 3]`)."""
    args = typing.get_args(annotation)
    return any(typing.get_origin(a) is tuple for a in args) and any(typing.get_args(a)[:1] == (int,) for a in args)


def _size(value, size: bool):
    """One size for the same size on every axis, so `3` and `[3, 3]` read the same."""
    if size and isinstance(value, list) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def _same(a, b) -> bool:
    if isinstance(a, BaseModel) or isinstance(b, BaseModel):
        return isinstance(a, BaseModel) and isinstance(b, BaseModel) and \
            _flat(a, "", True) == _flat(b, "", True)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                             and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _flat(value, path: str, defaults: bool, out: dict | None = None) -> dict:
    """`{path: value}` settings: a model is `path: <its tag>` then `path.field: value` lines;
    a list of bare tags is one value, other lists are `path.0...`."""
    out = {} if out is None else out
    if isinstance(value, BaseModel):
        fields = _fields(value, defaults)
        tag = next((k for k in _TAGS if k in fields), None)
        if tag is not None:
            out[path] = fields.pop(tag)
        for k, v in fields.items():
            _flat(v, f"{path}.{k}" if path else k, defaults, out)
    elif isinstance(value, list) and value and any(isinstance(v, BaseModel) for v in value):
        if all(isinstance(v, BaseModel) and len(_flat(v, "", defaults)) == 1 for v in value):
            out[path] = [_flat(v, "", defaults)[""] for v in value]
        else:
            for i, v in enumerate(value):
                _flat(v, f"{path}.{i}", defaults, out)
    elif isinstance(value, dict) and any(isinstance(v, BaseModel) for v in value.values()):
        for k, v in value.items():
            _flat(v, f"{path}.{k}", defaults, out)
    else:
        out[path] = value
    return out


@dataclass
class _Layer:
    name: str
    explicit: bool
    type: str
    settings: dict  # without the name
    full: dict  # with defaults, for "was the default" lookups

    def described(self) -> dict:
        """The layer as `{type: ..., arg: value}` with its arguments given."""
        return {"type": self.type, **{k: v for k, v in self.settings.items() if k}}

    @property
    def key(self) -> str:
        return json.dumps(self.settings, sort_keys=True, default=str)


def _layers(spec) -> list[_Layer]:
    names = default_names([(l.type, l.name) for l in spec.layers], spec.input_specs())
    return [_Layer(n, l.name is not None, l.type, _flat(l, "", False), _flat(l, "", True))
            for n, l in zip(names, spec.layers)]


def _settings(spec, defaults: bool) -> dict:
    """The spec's settings other than its layers (`name` only when the spec gives one)."""
    out = {}
    if spec.name is not None:
        out["name"] = spec.name
    for key, field in type(spec).model_fields.items():
        if key in ("name", "layers"):
            continue
        value = getattr(spec, key)
        if value is None and not defaults:
            continue
        if not defaults and not field.is_required() and not isinstance(value, BaseModel) and \
                _same(_plain(value), _plain(field.get_default(call_default_factory=True))):
            continue
        _flat(_plain(value), key, defaults, out)
    return out


def canonical_settings(spec, defaults: bool = False) -> dict:
    """Every setting of a spec as `{dotted path: value}`, in a fixed order: the top-level
    keys, then each layer as `layers.<name>: Type` and `layers.<name>.<arg>: value`."""
    top = _settings(spec, defaults)
    before = {k: v for k, v in top.items() if k.split(".")[0] in ("name", "description", "seed", "dtype",
                                                                 "input", "inputs", "layerc")}
    out = dict(before)
    for layer in _layers(spec):
        for k, v in (layer.full if defaults else layer.settings).items():
            out[f"layers.{layer.name}{'.' + k if k else ''}"] = v
    out.update({k: v for k, v in top.items() if k not in before})
    return out


def show(value) -> str:
    """A setting's value as it reads in YAML flow style: relu, 64, [28, 28, 1], null."""
    if isinstance(value, str):
        plain = value and value.strip() == value and value[0] not in "[]{}\"',&*#?|-<>=!%@`" and \
            not any(c in value for c in ":#,[]{}\n") and value.lower() not in ("null", "true", "false", "~")
        return value if plain and not _numeric(value) else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{show(k)}: {show(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def canonical_text(spec) -> str:
    """The canonical form: one `path: value` line per setting, defaults left out."""
    lines = ["# layerc canonical form: one setting a line, defaults left out"]
    lines += [f"{k}: {show(v)}" for k, v in canonical_settings(spec).items()]
    return "\n".join(lines) + "\n"


# -- the comparison ---------------------------------------------------------------------------
def _match(a: list[_Layer], b: list[_Layer]) -> list[tuple[int, int]]:
    """Pairs (index in a, index in b) of the layers that are the same layer."""
    pairs = []
    b_named = {l.name: j for j, l in enumerate(b) if l.explicit}
    for i, l in enumerate(a):
        if l.explicit and l.name in b_named:
            pairs.append((i, b_named[l.name]))
    rest_a = [i for i in range(len(a)) if i not in {p for p, _ in pairs}]
    rest_b = [j for j in range(len(b)) if j not in {q for _, q in pairs}]

    pairs += _align([a[i] for i in rest_a], [b[j] for j in rest_b], rest_a, rest_b)
    used_a, used_b = {p for p, _ in pairs}, {q for _, q in pairs}
    for i in [i for i in range(len(a)) if i not in used_a]:  # moved elsewhere, unchanged
        j = next((j for j in range(len(b)) if j not in used_b and b[j].key == a[i].key), None)
        if j is not None:
            pairs.append((i, j))
            used_b.add(j)
    return sorted(pairs)


_MAX_CELLS = 1_000_000  # beyond this, a greedy alignment instead of the quadratic one


def _align(a: list[_Layer], b: list[_Layer], ia: list[int], ib: list[int]) -> list[tuple[int, int]]:
    """The order-keeping pairing of a and b that scores most: 2 for identical layers, 1 for
    layers of the same type (a changed layer), so `Dense 256 -> 512` and `Dense 128 -> 256` in
    an otherwise equal stack are two changes, not a cascade. Returns pairs of ia/ib indices."""
    def score(x, y):
        return 2 if x.key == y.key else 1 if x.type == y.type else 0

    n, m = len(a), len(b)
    if n * m > _MAX_CELLS:
        sm = difflib.SequenceMatcher(None, [l.key for l in a], [l.key for l in b], autojunk=False)
        return [(ia[blk.a + k], ib[blk.b + k]) for blk in sm.get_matching_blocks() for k in range(blk.size)]
    best = [[0] * (m + 1) for _ in range(n + 1)]  # best[i][j]: the score of a[i:] against b[j:]
    for i in range(n - 1, -1, -1):
        row, below = best[i], best[i + 1]
        for j in range(m - 1, -1, -1):
            s = score(a[i], b[j])
            row[j] = max(below[j], row[j + 1], below[j + 1] + s if s else 0)
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        s = score(a[i], b[j])
        if s and best[i][j] == best[i + 1][j + 1] + s:
            pairs.append((ia[i], ib[j]))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def _in_order(pairs) -> set:
    """The largest set of pairs whose b indices increase with a's (the layers that did not move)."""
    best: list[list] = []
    for p in pairs:  # pairs sorted by a index: longest increasing subsequence of b, O(n^2)
        prev = max((s for s in best if s[-1][1] < p[1]), key=len, default=[])
        best.append(prev + [p])
    return set(max(best, key=len, default=[]))


def _compare(a: dict, b: dict, a_full: dict, b_full: dict, prefix: str, layer: bool) -> list[Change]:
    out = []
    for k in [k for k in dict.fromkeys([*b_full, *a_full, *b, *a]) if k in a or k in b]:
        old, new = a.get(k, a_full.get(k, _NO_VALUE)), b.get(k, b_full.get(k, _NO_VALUE))
        note = "default" if (k not in a and old is not _NO_VALUE) else \
            "to the default" if (k not in b and new is not _NO_VALUE) else ""
        if old is _NO_VALUE or new is _NO_VALUE or not _same(old, new):
            kind = "added" if old is _NO_VALUE else "removed" if new is _NO_VALUE else "changed"
            path = f"{prefix}{'.' + k if k and prefix else k}"
            out.append(Change(kind, path, None if old is _NO_VALUE else old, None if new is _NO_VALUE else new,
                              layer, note))
    return out


def diff(a, b) -> list[Change]:
    """The differences between two validated specs, settings first, then layers in b's order."""
    changes = _compare(_settings(a, False), _settings(b, False), _settings(a, True), _settings(b, True), "", False)
    la, lb = _layers(a), _layers(b)
    pairs = _match(la, lb)
    still = _in_order(pairs)
    matched_a, matched_b = {i: j for i, j in pairs}, {j: i for i, j in pairs}
    for i, l in enumerate(la):
        if i not in matched_a:
            changes.append(Change("removed", l.name, l.described(), None, True, f"was layer {i}"))
    for j, l in enumerate(lb):
        i = matched_b.get(j)
        if i is None:
            after = f"after {lb[j - 1].name}" if j else "first"
            changes.append(Change("added", l.name, None, l.described(), True, f"layer {j}, {after}"))
            continue
        old = la[i]
        if old.name != l.name:
            why = "renamed" if old.explicit or l.explicit else "default name shifted"
            changes.append(Change("renamed", l.name, old.name, l.name, True, why))
        if (i, j) not in still:
            changes.append(Change("moved", l.name, i, j, True, f"layer {i} -> {j}"))
        changes += _compare(old.settings, l.settings, old.full, l.full, l.name, True)
    return changes


def differs(changes: list[Change]) -> bool:
    """Whether the changes make the specs different (a default name shifting alone does not)."""
    return any(c.kind != "renamed" or c.note == "renamed" for c in changes)


def differing_settings(specs: list) -> dict[str, list]:
    """N-way: `{path: [value per spec]}` for every setting whose value is not the same in all
    (defaults counted as given; a layer missing from a spec has None)."""
    given = [canonical_settings(s) for s in specs]
    full = [canonical_settings(s, defaults=True) for s in specs]
    paths = list(dict.fromkeys(k for f in given for k in f))
    out = {}
    for p in paths:
        values = [g.get(p, f.get(p, _NO_VALUE)) for g, f in zip(given, full)]
        if any(v is _NO_VALUE for v in values) or not all(_same(values[0], v) for v in values[1:]):
            out[p] = [None if v is _NO_VALUE else v for v in values]
    return out
