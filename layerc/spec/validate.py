"""From YAML text to a validated `Spec`, or every located diagnostic found on the way."""
from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .names import written_names
from .data import data_by_kind
from .document import FORMAT_VERSION, Spec, full_spec
from .layers import LAYER_TYPES
from .source import MAX_BYTES, SourceMap, load_yaml, too_large
from .train import _Callbacks, train_by_type

MAX_LAYERS = 10_000

_TYPE_ERRORS = ("_type", "_parsing", "model_attributes_type", "dict_type", "list_type",
                "tuple_type", "union_tag_invalid", "literal_error", "is_instance_of")


def parse_spec(text: str, file: str = "<spec>", overrides=(), default_name=None) -> Spec:
    """Validate spec text; returns the Spec or raises SpecError with every diagnostic.

    Args:
        overrides: `key.path=value` strings (values read as YAML) applied before validation;
            a problem in an overridden value is reported against that override.
        default_name: the spec's name when it has no `name:`.
    """
    data, smap = load_yaml(text, file)
    data = apply_overrides(data, smap, overrides)
    diags: list[Diagnostic] = []
    if not isinstance(data, dict):
        raise SpecError([smap.diagnostic((), "a spec is a mapping with keys such as `input:` and `layers:`, "
                                              f"not a {_kind(data)}")])
    version = data.get("layerc", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise SpecError([smap.diagnostic(("layerc",), f"unknown format version {version!r}; "
                                                      f"this layerc reads `layerc: {FORMAT_VERSION}`")])
    raw, data = data, dict(data)
    layers_ok = True
    if isinstance(data.get("layers"), list) and len(data["layers"]) > MAX_LAYERS:
        raise SpecError([smap.diagnostic(("layers",), f"the spec has {len(data['layers']):,} layers; "
                                                      f"at most {MAX_LAYERS:,} are allowed")])
    if isinstance(data.get("layers"), list) and data["layers"]:
        data["layers"] = list(data["layers"])
        _input_shape(data, smap, diags)
    if isinstance(data.get("layers"), list):
        layers = []
        for i, item in enumerate(data["layers"]):
            layer = _layer(item, ("layers", i), smap, diags)
            layers_ok &= layer is not None
            layers.append(layer)
        data["layers"] = layers if layers_ok else [LAYER_TYPES["Flatten"]()]
    if default_name is not None and data.get("name") is None:
        data["name"] = default_name
    spec, sections = None, _sections(data)
    if sections is not None:
        try:
            spec = Spec.model_validate(sections)
        except ValidationError:
            pass
    if spec is None:  # the whole unions, for the same located errors whatever the sections hold
        try:
            spec = full_spec().model_validate(data)
        except ValidationError as e:
            diags += _translate(e, data, full_spec(), (), smap)
    if diags:
        raise SpecError(_sorted(diags))
    spec._source = smap
    spec._raw = raw
    return spec


def _sections(data):
    """`data` with `data:` and `train:` validated by only the models they name, or None when
    either does not validate so."""
    out = dict(data)
    for key, by_kind in (("data", data_by_kind), ("train", train_by_type)):
        if out.get(key) is not None:
            out[key] = by_kind(out[key])
            if out[key] is None:
                return None
    return out


def apply_overrides(data, smap: SourceMap, overrides):
    """Set `a.b.0.c=value` paths in the loaded data (lists by index, layers by type key)."""
    for text in overrides:
        where = Diagnostic("", f"--set {text}")
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            where.message = "an override is written key.path=value (e.g. train.epochs=3)"
            raise SpecError([where])
        parts = key.strip().split(".")
        try:
            value, _ = load_yaml(raw, f"--set {text}") if raw.strip() else (None, None)
        except SpecError as e:
            raise SpecError([Diagnostic(e.diagnostics[0].message, f"--set {text}")]) from None
        cur, path = data, ()
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if path == ("layers",) and isinstance(cur, list) and not part.lstrip("-").isdigit():
                names = written_names(data)
                if part not in names:
                    where.message = f"no layer named {part!r}"
                    where.hint = did_you_mean(part, names)
                    raise SpecError([where])
                part = str(names.index(part))
            if isinstance(cur, list):
                if not part.lstrip("-").isdigit() or not -len(cur) <= int(part) < len(cur):
                    where.message = f"{'.'.join(parts[:i]) or 'the spec'} is a list of {len(cur)}; {part!r} is no index in it"
                    raise SpecError([where])
                part = int(part) % len(cur)
            elif isinstance(cur, dict):
                if not last and part not in cur:
                    where.message = f"{'.'.join(parts[:i + 1])} is not in the spec"
                    hint = did_you_mean(part, [k for k in cur if isinstance(k, str)])
                    where.hint = hint
                    raise SpecError([where])
            else:
                where.message = f"{'.'.join(parts[:i])} is a single value, not a mapping or list"
                raise SpecError([where])
            path += (part,)
            if last:
                cur[part] = value
                smap.overrides[path] = f"--set {text}"
            elif _short_form(path):
                cur, path = _open_short_form(cur, part, path, parts[i + 1])
            else:
                cur = cur[part]
    return data


def _short_form(path) -> bool:
    """Whether the value at `path` is written `name`, `{name: {args}}` or `{type: name, ...}`."""
    return (len(path) == 2 and path[0] == "layers" and isinstance(path[1], int)) or path in (
        ("train", "optimizer"), ("train", "loss")) or (
        len(path) == 3 and path[:2] in (("train", "metrics"), ("train", "callbacks")) and isinstance(path[2], int))


def _open_short_form(parent, key, path, next_part):
    """Step from a `name` or `{name: {args}}` value into its arguments, so `--set` reaches them:
    `train.optimizer.learning_rate` when the spec says `optimizer: adam`."""
    cur = parent[key]
    if isinstance(cur, str):
        cur = parent[key] = {cur: {}}
    if isinstance(cur, dict) and len(cur) == 1 and "type" not in cur and next_part not in cur:
        (name, args), = cur.items()
        if args is None:
            args = cur[name] = {}
        if isinstance(args, dict):
            return args, path + (name,)
    return cur, path


def load_spec(path, overrides=()) -> Spec:
    """Read and validate a spec file. Raises SpecError (located) or OSError.

    A spec without `name:` is named after its file, made a valid name (`my model.yaml`
    is `my-model`), so a file name never refuses a spec that validated.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)  # never more: /dev/zero or a FIFO must not read forever
    if len(raw) > MAX_BYTES:
        raise too_large(str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError([Diagnostic(f"the file is not UTF-8 text (byte {e.start})", str(path))]) from None
    spec = parse_spec(text, str(path), overrides, default_name=name_from_file(path))
    spec._path = path
    return spec


def name_from_file(path) -> str:
    """A valid spec name made from a file's name: other characters become '-'."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", Path(path).stem).replace("..", "-")[:128]
    return name if re.match(r"^[A-Za-z_]", name) else f"spec-{name}"[:128]


def _input_shape(data, smap, diags):
    """Keras's `input_shape` on the first layer, as an alternative to `input:`."""
    first = data["layers"][0]
    args = next(iter(first.values())) if isinstance(first, dict) and len(first) == 1 and "type" not in first \
        else first
    if not isinstance(args, dict) or "input_shape" not in args:
        return
    where = ("layers", 0) if args is first else ("layers", 0, next(iter(first)))
    if "input" in data or "inputs" in data:
        diags.append(smap.diagnostic(where + ("input_shape",), "give the input shape once: `input_shape` on "
                                     "the first layer or `input:`, not both", key=True))
    else:
        data["input"] = {"shape": args["input_shape"]}
        smap.aliases[("input", "shape")] = smap.source_path(where + ("input_shape",))
    args = {k: v for k, v in args.items() if k != "input_shape"}
    data["layers"][0] = args if where == ("layers", 0) else {where[-1]: args}


def _layer(item, path, smap: SourceMap, diags):
    """Normalise one layer item to `{type: ..., **args}` and validate it with its model."""
    norm = _normalise(item, path, smap, diags, "a layer")
    if norm is None:
        return None
    cls = LAYER_TYPES[norm["type"]]
    if norm["type"] == "Bidirectional" and isinstance(norm.get("layer"), (dict, str)):
        inner = _normalise(norm["layer"], path + ("layer",), smap, diags, "the wrapped layer")
        if inner is None:
            return None
        if inner["type"] not in ("LSTM", "GRU", "SimpleRNN"):
            diags.append(smap.diagnostic(path + ("layer", "type"), "Bidirectional wraps an LSTM, GRU or "
                                         f"SimpleRNN, not {inner['type']}", key=True))
            return None
        norm["layer"] = inner
    if norm["type"] == "TimeDistributed" and isinstance(norm.get("layer"), (dict, str)):
        inner_item = norm["layer"]
        if isinstance(inner_item, dict) and any(isinstance(a, dict) and "inputs" in a for a in
                                                [inner_item, *inner_item.values()]):
            diags.append(smap.diagnostic(path + ("layer",), "the wrapped layer takes TimeDistributed's "
                                         "input; give `inputs` to TimeDistributed"))
            return None
        inner = _layer(inner_item, path + ("layer",), smap, diags)
        if inner is None:
            return None
        norm["layer"] = inner
    try:
        return cls.model_validate(norm)
    except ValidationError as e:
        diags += _translate(e, norm, cls, path, smap)
        return None


def _normalise(item, path, smap, diags, what):
    if isinstance(item, str):
        args, type_name = {}, item
        smap.aliases.setdefault(path + ("type",), path)
    elif isinstance(item, dict) and "type" in item:
        args, type_name = {k: v for k, v in item.items() if k != "type"}, item["type"]
    elif isinstance(item, dict) and len(item) == 1:
        (type_name, args), = item.items()
        if isinstance(args, dict) and "type" in args:
            diags.append(smap.diagnostic(path + (type_name, "type"), f"`type` is the key already: write "
                                         f"`- {type_name}: {{args}}` or `- {{type: {type_name}, ...}}`", key=True))
            return None
        written = smap.source_path(path) + (type_name,)
        smap.aliases[path] = smap.aliases[path + ("type",)] = written
        if args is None:
            args = {}
        elif not isinstance(args, dict):
            diags.append(smap.diagnostic(path, f"the arguments of {type_name} must be a mapping "
                                               f"(`- {type_name}: {{...}}`) or nothing (`- {type_name}`), "
                                               f"not a {_kind(args)}"))
            return None
    else:
        keys = ", ".join(map(str, item)) if isinstance(item, dict) else _kind(item)
        diags.append(smap.diagnostic(path, f"{what} is written `- Type: {{args}}`, `- Type` or "
                                           f"`- {{type: Type, ...}}`; got {keys}"))
        return None
    args = _rejoin_tuples(args)
    if not isinstance(type_name, str):
        diags.append(smap.diagnostic(path + ("type",), f"a layer type is a name such as Dense, not a "
                                     f"{_kind(type_name)}", key=True))
        return None
    if type_name not in LAYER_TYPES:
        hint = did_you_mean(type_name, LAYER_TYPES) or "see `layerc schema` for the layer types"
        diags.append(smap.diagnostic(path + ("type",), f"unknown layer type {type_name!r}", hint, key=True))
        return None
    return {"type": type_name, **args}


def _rejoin_tuples(args: dict) -> dict:
    """`{kernel_size: (3, 3)}` in a flow mapping reads as keys `kernel_size: '(3'` and `'3)'`;
    put the tuple text back together so that it gets one error with its fix."""
    out, open_key = {}, None
    for key, value in args.items():
        if open_key is not None and value is None and isinstance(key, (str, int, float)):
            out[open_key] += f", {key}"
            open_key = None if str(key).endswith(")") else open_key
            continue
        out[key] = value
        open_key = key if isinstance(value, str) and value.startswith("(") and ")" not in value else None
    return out


def _fix(value) -> str | None:
    """How to write a value that YAML read as a string but was meant as a number or a list."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?", text):
        return f"write {text} without quotes"
    inner = re.fullmatch(r"\((.*)\)", text)
    if inner:
        return f"write [{inner.group(1).strip()}]: YAML has no tuples, a pair is a list"
    return None


def _translate(error: ValidationError, data, model, prefix, smap: SourceMap) -> list[Diagnostic]:
    """Pydantic errors as located diagnostics, one per offending key or value."""
    by_path: dict[tuple, list[dict]] = {}
    for err in error.errors(include_url=False):
        by_path.setdefault(_data_path(data, err["loc"], err["type"]), []).append(err)
    out = []
    for path, errs in by_path.items():
        constraint = [e for e in errs if not e["type"].endswith(_TYPE_ERRORS)]
        err = (constraint or errs)[0]
        out.append(_diagnostic(err, errs, path, data, model, prefix, smap))
    return out


def _diagnostic(err, errs, path, data, model, prefix, smap):
    where = prefix + path
    field = ".".join(str(p) for p in path) or "spec"
    kind = err["type"]
    if kind == "extra_forbidden":
        fields = _fields_at(model, path[:-1], data)
        owner = _owner(data, path, model)
        return smap.diagnostic(where, f"unknown key {path[-1]!r} for {owner}",
                               did_you_mean(path[-1], fields) or _listing(fields), key=True)
    if kind == "missing":
        owner = _owner(data, path, model)
        return smap.diagnostic(where[:-1], f"{owner} needs `{path[-1]}`", key=True)
    value = _value_at(data, path)
    if kind == "union_tag_invalid":
        tag, expected = err["ctx"]["tag"], _literals([{"ctx": {"expected": err["ctx"]["expected_tags"]}}])
        return smap.diagnostic(where + ("type",), f"{field}: unknown type {tag!r}; expected one of "
                               f"{', '.join(expected)}", did_you_mean(tag, expected))
    if kind == "union_tag_not_found":
        return smap.diagnostic(where, f"{field} needs a `type` (or is written as a bare name)")
    if kind == "literal_error" or (len(errs) > 1 and all(e["type"] == "literal_error" for e in errs)):
        allowed = _literals(errs)
        hint = did_you_mean(value, allowed)
        return smap.diagnostic(where, f"{field} must be one of {', '.join(map(repr, allowed))}; got {value!r}", hint)
    if len(errs) > 1 and not [e for e in errs if not e["type"].endswith(_TYPE_ERRORS)]:
        wanted = " or ".join(sorted({_expected(e) for e in errs}))
        return smap.diagnostic(where, f"{field} must be {wanted}; got {_show(value)}", _fix(value))
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
        if path and not isinstance(value, dict):  # a field's own validator
            return smap.diagnostic(where, f"{field}: {msg}")
        return smap.diagnostic(where, f"{_owner(data, path + ('x',), model)}: {msg}")
    msg = msg.replace("Input should be", "must be").replace("Input", "value")
    if value is not _MISSING and not path == ():
        msg = f"{msg}; got {_show(value)}"
    return smap.diagnostic(where, f"{field} {msg}" if path else msg, _fix(value))


_MISSING = object()


def _data_path(data, loc, kind) -> tuple:
    """The loc's path through the actual data, dropping union-member and tag names."""
    path, cur = [], data
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            path.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            path.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and kind == "missing" and part == loc[-1]:
            path.append(part)
        elif isinstance(cur, BaseModel):
            break
    return tuple(path)


def _value_at(data, path):
    cur = data
    for p in path:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return cur


def _owner(data, path, model) -> str:
    parent = _value_at(data, path[:-1])
    if isinstance(parent, dict) and isinstance(parent.get("type"), str):
        return str(parent["type"])
    return f"`{'.'.join(map(str, path[:-1]))}`" if len(path) > 1 else "the spec"


def _fields_at(model, path, data) -> list[str]:
    """Field names of the model(s) that validate the mapping at `path`."""
    models = [model]
    for part in path:
        if isinstance(part, int):
            continue
        nxt = []
        for m in models:
            f = m.model_fields.get(part)
            if f is not None:
                nxt += _models_in(f.annotation)
        models = nxt
    value = _value_at(data, path)
    if isinstance(value, dict):  # narrow to the models whose tag fields (type, format, ...) match
        tagged = [m for m in models if any(
            k in value and value[k] in typing.get_args(f.annotation)
            for k, f in m.model_fields.items() if typing.get_origin(f.annotation) is typing.Literal)]
        models = tagged or models
    return sorted({name for m in models for name in m.model_fields})


def _models_in(annotation) -> list:
    if isinstance(annotation, _Callbacks):  # a union imported on demand
        return _models_in(annotation.union())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _literals(errs):
    out = []
    for e in errs:
        expected = (e.get("ctx") or {}).get("expected", "")
        out += [s.strip().strip("'") for s in expected.replace(" or ", ",").split(",") if s.strip()]
    return list(dict.fromkeys(out))


def _expected(err) -> str:
    kind = err["type"]
    return {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
            "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
            "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
            "none_required": "null"}.get(kind, err["msg"].replace("Input should be ", ""))


def _listing(fields) -> str | None:
    return f"known keys: {', '.join(fields)}" if fields else None


def _show(value) -> str:
    if value is _MISSING:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value) -> str:
    kinds = {dict: "mapping", list: "list", str: "string", type(None): "null", int: "number",
             float: "number", bool: "boolean"}
    return kinds.get(type(value), type(value).__name__)


def _sorted(diags):
    return sorted(diags, key=lambda d: (d.line or 0, d.col or 0))
