"""Sweep files: which spec to tune, over which `--set` paths, how. No numpy, no Ray here.

`load_sweep(path)` validates the file (pydantic, located diagnostics like a spec's), loads
the spec it names with the sweep's `set:` applied, and checks every space key and every
value its distribution can produce against the spec, so a sweep that cannot run is
refused before any trial starts.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .source import MAX_BYTES, load_yaml, too_large

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
_PATH_ERRORS = ("unknown key", "no layer named", "is not in the spec", "is no index in it",
                "is a single value, not a mapping or list")  # a misspelt path, as `--set` words it


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """One space entry: `{uniform: [lo, hi]}`, `{loguniform: [lo, hi]}`,
    `{randint: [lo, hi]}` (both ends included) or `{choice: [a, b, ...]}`."""

    uniform: Optional[List[float]] = None
    loguniform: Optional[List[float]] = None
    randint: Optional[List[int]] = None
    choice: Optional[List[Any]] = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in DISTRIBUTIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give one distribution ({', '.join(DISTRIBUTIONS)}); got "
                             f"{', '.join(given) or 'none'}")
        kind, values = given[0], getattr(self, given[0])
        if kind == "choice":
            if not values:
                raise ValueError("choice needs at least one value")
            return self
        if len(values) != 2:
            raise ValueError(f"{kind} takes [low, high]; got {len(values)} numbers")
        lo, hi = values
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{kind} bounds must be finite numbers")
        if (lo > hi) if kind == "randint" else (lo >= hi):
            raise ValueError(f"{kind}: low ({lo}) must be below high ({hi})")
        if kind == "loguniform" and lo <= 0:
            raise ValueError(f"loguniform needs a positive low bound; got {lo}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DISTRIBUTIONS if getattr(self, k) is not None)

    @property
    def args(self) -> list:
        return getattr(self, self.kind)

    def probes(self) -> list[tuple]:
        """(index in the file's list or None, value) to check against the spec: every choice,
        else both bounds, after (for the continuous ones) a value with a fraction, which an
        integer field refuses."""
        if self.kind == "choice":
            return list(enumerate(self.args))
        lo, hi = self.args
        if self.kind == "randint":
            return [(0, int(lo)), (1, int(hi))]
        inner = math.exp(math.log(lo) + 0.377 * (math.log(hi) - math.log(lo))) if self.kind == "loguniform" \
            else lo + 0.377 * (hi - lo)
        return [(None, inner), (0, float(lo)), (1, float(hi))]


class Resources(_Strict):
    cpus_per_trial: int = Field(1, ge=1, le=1024)


class SweepFile(_Strict):
    """The sweep file's keys (see the README's Sweeps section)."""

    spec: str
    metric: str
    mode: Literal["min", "max"]
    samples: int = Field(10, ge=1, le=100_000)
    search: Literal["random", "grid", "optuna"] = "random"
    scheduler: Literal["fifo", "asha"] = "fifo"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    set: Dict[str, Any] = Field(default_factory=dict)
    space: Dict[str, Distribution]
    resources: Resources = Field(default_factory=Resources)
    max_failures: int = Field(2, ge=0, le=100)

    @model_validator(mode="after")
    def _space(self):
        if not self.space:
            raise ValueError("`space` needs at least one key to tune")
        return self


@dataclass
class Sweep:
    """A validated sweep: its settings, the spec file, the spec's text and where each key is."""

    file: SweepFile
    path: Path
    spec_path: Path
    spec_text: str
    smap: Any

    def fixed_overrides(self) -> list[str]:
        return [override(k, v) for k, v in self.file.set.items()]

    def diagnostic(self, path, message, hint=None, key=False) -> Diagnostic:
        return self.smap.diagnostic(path, message, hint, key=key)


def override(key: str, value) -> str:
    """A `--set` string for a value (JSON is YAML, so the value reads back as it was)."""
    return f"{key}={json.dumps(value)}"


def load_sweep(path) -> Sweep:
    """Read and validate a sweep file and check its space against its spec.

    Raises SpecError (located at the sweep file's keys) or OSError."""
    from .validate import _translate, parse_spec

    path = Path(path)
    text = _read(path)
    data, smap = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise SpecError([smap.diagnostic((), "a sweep file is a mapping with `spec:`, `metric:`, "
                                             "`mode:` and `space:`")])
    try:
        file = SweepFile.model_validate(data)
    except ValidationError as e:
        diags = sorted(_translate(e, data, SweepFile, (), smap), key=lambda d: (d.line or 0, d.col or 0))
        for d in diags:  # a misspelt distribution: pydantic's path through the dict has no field names
            if d.hint is None and d.message.startswith("unknown key") and "`space." in d.message:
                d.hint = did_you_mean(d.message.split("'")[1], DISTRIBUTIONS) or f"one of {', '.join(DISTRIBUTIONS)}"
        raise SpecError(diags) from None
    spec_path = (path.parent / file.spec)
    try:
        spec_text = _read(spec_path)
    except OSError as e:
        raise SpecError([smap.diagnostic(("spec",), f"cannot read the spec {str(spec_path)!r}: "
                                                    f"{e.strerror or e}")]) from None
    sweep = Sweep(file, path, spec_path, spec_text, smap)
    fixed = sweep.fixed_overrides()
    diags = []
    for key, value in file.set.items():
        diags += _check(sweep, [], override(key, value), ("set", key), f"set {key}={value!r}")
    if diags:
        raise SpecError(diags)
    if file.search == "grid":
        for key, dist in file.space.items():
            if dist.kind != "choice":
                diags.append(smap.diagnostic(("space", key, dist.kind), f"search: grid tries every value "
                             f"of each key; {key} is {dist.kind}, which has no list of values",
                             "use {choice: [...]} or search: random", key=True))
    for key, dist in file.space.items():
        diags += _check_key(sweep, fixed, key, dist)
    if diags:
        raise SpecError(diags)
    parse_spec(spec_text, str(spec_path), fixed)  # the spec itself, with `set:`, errors in the spec file
    return sweep


def _check_key(sweep, fixed, key, dist) -> list[Diagnostic]:
    """The first problem of a space key: its path, a value's type or a bound."""
    kind = dist.kind
    for i, value in dist.probes():
        where = ("space", key, kind) + (() if i is None else (i,))
        diags = _check(sweep, fixed, override(key, value), where, f"space {key}: {kind} value {value!r}")
        if diags and i is None and not _check(sweep, fixed, override(key, round(value)), where, ""):
            return [sweep.diagnostic(("space", key, kind), f"space {key}: the field takes whole numbers; "
                                     f"{kind} draws fractions", "use randint or choice", key=True)]
        if diags:
            return diags
    return []


def _check(sweep, fixed, text, where, what) -> list[Diagnostic]:
    """Diagnostics of the spec with `fixed` and one more override, moved onto the sweep file."""
    from .validate import parse_spec

    try:
        parse_spec(sweep.spec_text, str(sweep.spec_path), [*fixed, text])
    except SpecError as e:
        mine = [d for d in e.diagnostics if d.file == f"--set {text}"]
        if not mine:
            return []  # the spec's own problem: reported once, against the spec file
        d = mine[0]
        if any(phrase in d.message for phrase in _PATH_ERRORS):
            return [sweep.diagnostic(where[:2], f"{where[0]} {where[1]}: {d.message}", d.hint, key=True)]
        return [sweep.diagnostic(where, f"{what}: {d.message}", d.hint)]
    return []


def _read(path: Path) -> str:
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise too_large(str(path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError([Diagnostic(f"the file is not UTF-8 text (byte {e.start})", str(path))]) from None
