"""One Keras layer's config as a layerc layer's arguments, Keras's defaults left out.

A value layerc cannot compute (a constraint, a regularizer it lacks, a dtype policy, an
option of Keras's at another value than layerc's behaviour) or Python code is reported on
the layer, so the caller can list every problem at once.
"""
from __future__ import annotations

from .keras_config import INITIALIZERS, RECURRENT, WINDOW_FIELDS, allowed, compact, is_builtin, short_float

_KERAS_INIT = {v: k for k, v in INITIALIZERS.items() if k != "uniform"}
_INIT_DEFAULTS = {"RandomUniform": {"minval": -0.05, "maxval": 0.05}, "RandomNormal": {"mean": 0.0, "stddev": 0.05},
                  "TruncatedNormal": {"mean": 0.0, "stddev": 0.05}, "Orthogonal": {"gain": 1.0}}
INPUT_KEYS = ("batch_shape", "batch_input_shape", "input_shape", "input_dtype")


class Problems:
    """Where a layer's problems and notes go, each prefixed with its class and name."""

    def __init__(self, problems, notes, cls, name):
        self.problems, self.notes, self.cls, self.name = problems, notes, cls, name

    def bad(self, reason):
        self.problems.append(f"{self.cls} '{self.name}': {reason}")

    def note(self, text):
        self.notes.append(f"{self.cls} '{self.name}': {text}")


def usable_name(name) -> bool:
    import re

    return isinstance(name, str) and len(name) <= 128 and re.match(r"^[A-Za-z_][A-Za-z0-9_.\-]*$", name) is not None


def layer_args(entry, problems, notes, dtypes) -> dict:
    """One Keras layer entry as `{Type: {args}}` (args without Keras's defaults)."""
    from ..spec.layers import LAYER_TYPES

    cls = entry.get("class_name")
    cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    lname = entry.get("name") or cfg.get("name")
    layer = Problems(problems, notes, cls, lname)
    if not usable_name(lname):
        layer.bad("its name cannot name a layerc layer (letters, digits, _ . -)")
    if cls == "Lambda":
        layer.bad("a Lambda layer runs Python code from the file; refused")
        return {"Lambda": {}}
    if not is_builtin(entry):
        layer.bad(f"a custom object (module {entry.get('module')!r}, registered as "
                  f"{entry.get('registered_name')!r}); layerc runs no code from a model file")
        return {str(cls): {}}
    if cls in ("Sequential", "Functional", "Model"):
        layer.bad("a model nested as a layer (layerc imports flat models)")
        return {str(cls): {}}
    if cls not in LAYER_TYPES:
        layer.bad("layerc has no such layer")
        return {str(cls): {}}
    args = {"name": lname, **_args(cls, cfg, layer, dtypes)}
    return {cls: args}


def _args(cls, cfg, layer, dtypes, inner=False) -> dict:
    from pydantic import ValidationError

    from ..spec.layers import LAYER_TYPES

    model = LAYER_TYPES[cls]
    fields = model.model_fields
    args = {}
    for key, value in cfg.items():
        if key in ("name", "type", "inputs", "backward_layer") or key in INPUT_KEYS:
            continue
        if key == "dtype":
            policy = (value.get("config") or {}).get("name") if isinstance(value, dict) else value
            if policy not in ("float32", "float64"):
                layer.bad(f"dtype policy {policy!r} (layerc computes in float32 or float64)")
            dtypes.add(policy)
        elif key == "trainable":
            if value is False:
                args["trainable"] = False
        elif key == "zero_output_for_mask" and inner:
            continue  # Bidirectional sets it from return_sequences, as layerc does
        elif key in fields:
            converted = _field(cls, key, value, layer)
            if converted is not _SKIP:
                args[key] = converted
        elif not allowed(key, value):
            layer.bad(f"{key}={show(value)} (layerc has no such option)")
    if cls == "Bidirectional":
        _check_backward(cfg, layer)
    if cls == "MultiHeadAttention" and args.get("value_dim") == args.get("key_dim"):
        del args["value_dim"]  # Keras writes key_dim for None
    if cls in ("MaxPooling1D", "MaxPooling2D", "AveragePooling2D", "AveragePooling1D") and "strides" in args:
        if compact(args["strides"]) == compact(args.get("pool_size", fields["pool_size"].default)):
            del args["strides"]
    try:
        validated = model.model_validate({k: _typed(v) if k == "layer" else v for k, v in args.items()})
    except ValidationError as e:
        err = e.errors()[0]
        layer.bad(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
        return args
    kept = {k: v for k, v in args.items()
            if k == "layer" or compact(getattr(validated, k)) != compact(fields[k].default)}
    required = [k for k in fields if fields[k].is_required()]  # units, filters, ... first, as Keras writes them
    return {k: kept[k] for k in sorted(kept, key=lambda k: (k not in ("name", *required), k == "inputs"))}


_SKIP = object()


def _typed(layer: dict) -> dict:
    """`{LSTM: {args}}` -> `{type: LSTM, ...args}`, the form the layer models validate."""
    (t, args), = layer.items()
    args = dict(args or {})
    if isinstance(args.get("layer"), dict):  # a wrapper of a wrapper
        args["layer"] = _typed(args["layer"])
    return {"type": t, **args}


def show(value) -> str:
    if isinstance(value, dict) and "class_name" in value:
        cfg = value.get("config")
        inner = ", ".join(f"{k}={v!r}" for k, v in cfg.items()) if isinstance(cfg, dict) else repr(cfg)
        return f"{value['class_name']}({inner})"
    return repr(value)


def _field(cls, key, value, layer):
    if key.endswith("_initializer"):
        return _initializer(value, layer, key)
    if key.endswith("_regularizer"):
        return _regularizer(value, layer, key)
    if key == "activation":
        if isinstance(value, dict):
            if not is_builtin(value) or not isinstance(value.get("config"), str):
                layer.bad(f"activation {show(value)} is a custom function; layerc runs no code from a model file")
                return _SKIP
            value = value["config"]
        return value
    if key in WINDOW_FIELDS and isinstance(value, list):
        return compact(value)
    if key == "noise_shape" and value is not None:
        if not isinstance(value, list) or not value:
            layer.bad(f"noise_shape {value!r} is not a shape")
            return _SKIP
        return value[1:] if value[0] is None else value  # a fixed batch entry kept, with its axis
    if key == "axis" and cls == "LayerNormalization" and isinstance(value, list) and len(value) == 1:
        return value[0]
    if key == "axis" and cls == "Normalization" and value in ([], None):
        return None  # Keras writes axis=None as ()
    if key == "data_format" and value == "channels_last":
        return None  # SpatialDropout2D's None
    if key == "attention_axes" and value in ([1], [-2], 1, -2):
        return None  # the steps axis, layerc's only one (Keras writes [1] for None)
    if key == "layer" and cls == "TimeDistributed":
        return _wrapped(value, layer)
    if key == "layer":
        if not isinstance(value, dict) or value.get("class_name") not in RECURRENT or not is_builtin(value):
            layer.bad(f"wraps {value.get('class_name') if isinstance(value, dict) else value!r}; layerc's "
                      "Bidirectional wraps SimpleRNN, LSTM or GRU")
            return _SKIP
        inner_cls = value["class_name"]
        inner = Problems(layer.problems, layer.notes, inner_cls, f"{layer.name}.layer")
        return {inner_cls: _args(inner_cls, value.get("config") or {}, inner, set(), inner=True) or None}
    if isinstance(value, float):
        return short_float(value)
    return value


def _wrapped(value, layer):
    """TimeDistributed's layer as `{Type: {args}}`, its problems reported on the wrapper."""
    from ..spec.layers import LAYER_TYPES

    inner_cls = value.get("class_name") if isinstance(value, dict) else None
    if not isinstance(value, dict) or not is_builtin(value) or inner_cls not in LAYER_TYPES:
        layer.bad(f"wraps {inner_cls or value!r}, which layerc has not (or a custom object)")
        return _SKIP
    inner = Problems(layer.problems, layer.notes, inner_cls, f"{layer.name}.layer")
    return {inner_cls: _args(inner_cls, value.get("config") or {}, inner, set(), inner=True) or None}


def _initializer(value, layer, key):
    if isinstance(value, str):
        return value if value in INITIALIZERS else _unknown_init(value, layer, key)
    if not isinstance(value, dict) or not is_builtin(value):
        return _unknown_init(show(value) if isinstance(value, dict) else value, layer, key)
    name = _KERAS_INIT.get(value.get("class_name"))
    cfg = {k: v for k, v in (value.get("config") or {}).items() if k != "seed" and v is not None}
    defaults = _INIT_DEFAULTS.get(value.get("class_name"), {})
    if name is None or any(defaults.get(k, _SKIP) != v for k, v in cfg.items()):
        return _unknown_init(show(value), layer, key)
    if name == "random_uniform" and layer.cls == "Embedding":
        return "uniform"  # Keras's Embedding default, the same RandomUniform(-0.05, 0.05)
    return name


def _unknown_init(shown, layer, key):
    layer.note(f"{key} {shown} is not in layerc; its default is used (only for training from scratch)")
    return _SKIP


def _regularizer(value, layer, key):
    if value is None:
        return None
    if isinstance(value, str) and value in ("l1", "l2", "l1_l2"):
        return value
    cls = value.get("class_name") if isinstance(value, dict) else None
    if cls not in ("L1", "L2", "L1L2") or not is_builtin(value):
        layer.bad(f"{key} {show(value) if isinstance(value, dict) else repr(value)} (layerc has L1, L2 and L1L2)")
        return _SKIP
    cfg = value.get("config") or {}
    l1, l2 = short_float(cfg.get("l1", 0.0) or 0.0), short_float(cfg.get("l2", 0.0) or 0.0)
    if l1 == 0.0 and l2 == 0.0:
        return None
    return {k: v for k, v in (("l1", l1), ("l2", l2)) if v}


def _check_backward(cfg, layer):
    back, fwd = cfg.get("backward_layer"), cfg.get("layer")
    if back is None:
        return
    strip = ("name", "go_backwards", "zero_output_for_mask", "build_config")
    same = (isinstance(back, dict) and isinstance(fwd, dict) and back.get("class_name") == fwd.get("class_name")
            and {k: v for k, v in (back.get("config") or {}).items() if k not in strip and "initializer" not in k}
            == {k: v for k, v in (fwd.get("config") or {}).items() if k not in strip and "initializer" not in k}
            and bool((back.get("config") or {}).get("go_backwards")) != bool((fwd.get("config") or {}).get("go_backwards")))
    if not same:
        layer.bad("its backward_layer differs from its forward layer (layerc's Bidirectional mirrors one layer)")
