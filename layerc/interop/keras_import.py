"""A Keras 3 model config as a layerc spec: layers, connections, inputs, outputs, training.

Every layer is checked before anything is returned: a class layerc lacks, an option value
layerc cannot compute, or Python code (a `Lambda`, a custom or registered class) is
collected, so one error lists them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .keras_config import (
    INITIALIZERS, LOSSES, OPTIMIZERS, RECURRENT, WINDOW_FIELDS, KerasError, allowed, compact, is_builtin,
    short_float,
)

_KERAS_INIT = {v: k for k, v in INITIALIZERS.items() if k != "uniform"}
_INIT_DEFAULTS = {"RandomUniform": {"minval": -0.05, "maxval": 0.05}, "RandomNormal": {"mean": 0.0, "stddev": 0.05},
                  "TruncatedNormal": {"mean": 0.0, "stddev": 0.05}, "Orthogonal": {"gain": 1.0}}
_INPUT_KEYS = ("batch_shape", "batch_input_shape", "input_shape", "input_dtype")
_INPUT_DTYPES = {"float32": "float32", "float64": "float64", "int32": "int32", "int64": "int32",
                 "int16": "int32", "int8": "int32", "uint8": "int32"}


@dataclass
class Translation:
    """What a Keras config becomes: the spec as data, the Keras layers in their h5 order."""

    data: dict
    keras_layers: list  # (class name, layer name) of each tracked layer, in model.layers order
    kind: str  # Sequential or Functional
    notes: list = field(default_factory=list)


class _Layer:
    def __init__(self, problems, notes, cls, name):
        self.problems, self.notes, self.cls, self.name = problems, notes, cls, name

    def bad(self, reason):
        self.problems.append(f"{self.cls} '{self.name}': {reason}")

    def note(self, text):
        self.notes.append(f"{self.cls} '{self.name}': {text}")


def translate(config) -> Translation:
    """A Keras model config (config.json's content) as spec data; KerasError listing every
    layer layerc cannot express."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise KerasError("not a Keras model config (no class_name/config)")
    cls = config.get("class_name")
    if cls not in ("Sequential", "Functional", "Model") or not is_builtin(config):
        raise KerasError(f"the model is a {cls!r} from {config.get('module')!r}: layerc imports Keras's "
                         "Sequential and Functional models (a subclassed model is Python code)")
    body = config["config"]
    entries = body.get("layers")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise KerasError("the model config has no list of layers")
    problems, notes = [], []
    dtypes = set()
    if cls == "Sequential":
        data, tracked = _sequential(config, entries, problems, notes, dtypes)
    else:
        data, tracked = _functional(body, entries, problems, notes, dtypes)
    if problems:
        raise KerasError(f"{len(problems)} layer{'s' if len(problems) > 1 else ''} layerc cannot express:\n  "
                         + "\n  ".join(problems))
    if dtypes - {"float32"}:
        if dtypes == {"float64"}:
            data["dtype"] = "float64"
        else:
            raise KerasError(f"the layers mix dtype policies ({', '.join(sorted(dtypes))}); layerc runs one dtype")
    name = body.get("name")
    head = {"layerc": 1}
    if isinstance(name, str) and _usable_name(name):
        head["name"] = name
    train = _train(config.get("compile_config"), notes)
    data = {**head, **data}
    if train:
        data["train"] = train
    return Translation(data, tracked, "Sequential" if cls == "Sequential" else "Functional", notes)


def _usable_name(name) -> bool:
    import re

    return isinstance(name, str) and len(name) <= 128 and re.match(r"^[A-Za-z_][A-Za-z0-9_.\-]*$", name) is not None


# -- model structure --------------------------------------------------------------------------

def _sequential(config, entries, problems, notes, dtypes):
    body = config["config"]
    shape = dtype = None
    if entries and entries[0].get("class_name") == "InputLayer":
        first, entries = entries[0], entries[1:]
        shape, dtype = _input(first, problems, notes)
    elif entries:
        cfg = entries[0].get("config") or {}
        raw = next((cfg[k] for k in _INPUT_KEYS[:3] if isinstance(cfg.get(k), list)), None)
        if raw is None:
            raw = body.get("build_input_shape") or (config.get("build_config") or {}).get("input_shape")
        elif "input_shape" in cfg and not any(k in cfg for k in _INPUT_KEYS[:2]):
            raw = [None, *raw]
        shape = _shape(raw, problems, "the model")
        dtype = _dtype(cfg.get("input_dtype") or (cfg.get("dtype") if isinstance(cfg.get("dtype"), str) else None)
                       or "float32", problems, "the model")
    if not entries:
        raise KerasError("the model has no layers")
    if shape is None and not problems:
        raise KerasError("the Sequential model has no input shape (build it, or give an Input, before saving)")
    layers = [_layer(e, problems, notes, dtypes) for e in entries]
    inp = {"shape": shape or [1]}
    if dtype and dtype != "float32":
        inp["dtype"] = dtype
    tracked = [(e.get("class_name"), (e.get("config") or {}).get("name")) for e in entries]
    return {"input": inp, "layers": _drop_default_names(layers, ["input_layer"])}, tracked


def _functional(body, entries, problems, notes, dtypes):
    inputs, layers, names, tracked = {}, [], [], []
    for e in entries:
        cfg = e.get("config") or {}
        lname = e.get("name") or cfg.get("name")
        tracked.append((e.get("class_name"), lname))
        if e.get("class_name") == "InputLayer":
            shape, dtype = _input(e, problems, notes)
            inputs[lname] = {"shape": shape or [1], **({"dtype": dtype} if dtype and dtype != "float32" else {})}
            continue
        spec = _layer(e, problems, notes, dtypes)
        spec["_sources"] = _inbound(e, problems, lname)
        layers.append(spec)
        names.append(lname)
    outs = [r[0] for r in _refs(body.get("output_layers"), problems, "output_layers")]
    ins = [r[0] for r in _refs(body.get("input_layers"), problems, "input_layers")]
    for out in outs:
        if out not in names:
            problems.append(f"output '{out}': a model output must be a layer's output")
    inputs = {k: inputs[k] for k in ins if k in inputs} | {k: v for k, v in inputs.items() if k not in ins}
    prev = None
    for spec, lname in zip(layers, names):
        srcs = spec.pop("_sources")
        implied = [prev] if prev is not None else (list(inputs) if len(inputs) == 1 else None)
        if srcs != implied:
            args = next(iter(spec.values()))
            if isinstance(args, dict):
                args["inputs"] = srcs[0] if len(srcs) == 1 else srcs
        prev = lname
    data = {}
    if list(inputs) == ["input_layer"]:
        data["input"] = inputs["input_layer"]
    else:
        data["inputs"] = inputs
    data["layers"] = _drop_default_names(layers, list(inputs))
    if outs and outs != names[-1:]:
        data["outputs"] = outs[0] if len(outs) == 1 else outs
    return data, tracked


def _refs(value, problems, what):
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, list) and v and isinstance(v[0], str) for v in value):
        problems.append(f"the model's {what} are not in Keras 3's form")
        return []
    for v in value:
        if list(v[1:3]) != [0, 0]:
            problems.append(f"the model's {what} take '{v[0]}' at node {v[1]}, output {v[2]}: "
                            "layerc calls each layer once, with one output")
    return value


def _inbound(entry, problems, lname) -> list:
    cls = entry.get("class_name")
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
        n = len(nodes) if isinstance(nodes, list) else 0
        problems.append(f"{cls} '{lname}': called {n} times" + (" (a shared layer); layerc calls each layer once"
                                                                if n > 1 else " (inbound_nodes not in Keras 3's form)"))
        return []
    args, kwargs = nodes[0].get("args") or [], nodes[0].get("kwargs") or {}
    extra = {k: v for k, v in kwargs.items() if not (k in ("mask", "training") and v in (None, False))}
    if extra or len(args) != 1:
        problems.append(f"{cls} '{lname}': called with arguments layerc has no form for "
                        f"({', '.join(extra) or f'{len(args)} positional'})")
        return []
    tensors = args[0] if isinstance(args[0], list) else [args[0]]
    srcs = []
    for t in tensors:
        if not isinstance(t, dict) or t.get("class_name") != "__keras_tensor__":
            problems.append(f"{cls} '{lname}': an input that is not a layer's output")
            return []
        hist = (t.get("config") or {}).get("keras_history")
        if not isinstance(hist, list) or len(hist) != 3 or list(hist[1:]) != [0, 0]:
            problems.append(f"{cls} '{lname}': takes a shared layer's or a multi-output layer's output "
                            f"({hist}); layerc has one output per layer")
            return []
        srcs.append(hist[0])
    return srcs


def _input(entry, problems, notes):
    cfg = entry.get("config") or {}
    lname = cfg.get("name")
    layer = _Layer(problems, notes, "InputLayer", lname)
    raw = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if not _usable_name(lname):
        layer.bad("its name cannot name a layerc input (letters, digits, _ . -)")
    for key in ("sparse", "ragged", "optional"):
        if cfg.get(key):
            layer.bad(f"{key}=True (layerc inputs are dense tensors)")
    return _shape(raw, problems, f"InputLayer '{lname}'"), _dtype(cfg.get("dtype", "float32"), problems,
                                                                  f"InputLayer '{lname}'")


def _shape(raw, problems, what):
    if not isinstance(raw, list) or len(raw) < 2 or not all(d is None or isinstance(d, int) and d > 0 for d in raw):
        problems.append(f"{what}: input shape {raw!r} is not a batch shape [None, ...]")
        return None
    return list(raw[1:])


def _dtype(value, problems, what):
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name")
    if value not in _INPUT_DTYPES:
        problems.append(f"{what}: input dtype {value!r} (layerc inputs are float32, float64 or int32)")
        return None
    return _INPUT_DTYPES[value]


def _drop_default_names(layers, input_names) -> list:
    """Leave out each name layerc would give the layer anyway (`dense`, `dense_1`, ...)."""
    from ..spec.names import default_names

    def pairs(keep):
        out = []
        for spec, k in zip(layers, keep):
            (t, args), = spec.items()
            out.append((t, args.get("name") if k and isinstance(args, dict) else None))
        return out

    names = [n for _, n in pairs([True] * len(layers))]
    guess = default_names(pairs([False] * len(layers)), input_names)
    keep = [n != g for n, g in zip(names, guess)]
    if len(layers) <= 300:  # greedy, each name left out if the others still give it
        keep = [True] * len(layers)
        for i in range(len(layers)):
            keep[i] = False
            if default_names(pairs(keep), input_names) != names:
                keep[i] = True
    elif default_names(pairs(keep), input_names) != names:
        keep = [True] * len(layers)
    result = []
    for spec, k in zip(layers, keep):
        (t, args), = spec.items()
        if isinstance(args, dict):
            args = {**({"name": args["name"]} if k and "name" in args else {}),
                    **{a: v for a, v in args.items() if a != "name"}}
        result.append({t: args or None})
    return result


# -- one layer --------------------------------------------------------------------------------

def _layer(entry, problems, notes, dtypes) -> dict:
    """One Keras layer entry as `{Type: {args}}` (args without Keras's defaults)."""
    from ..spec.layers import LAYER_TYPES

    cls = entry.get("class_name")
    cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    lname = entry.get("name") or cfg.get("name")
    layer = _Layer(problems, notes, cls, lname)
    if not _usable_name(lname):
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
        if key in ("name", "type", "inputs", "backward_layer") or key in _INPUT_KEYS:
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
            layer.bad(f"{key}={_show(value)} (layerc has no such option)")
    if cls == "Bidirectional":
        _check_backward(cfg, layer)
    if cls in ("MaxPooling1D", "MaxPooling2D", "AveragePooling2D") and "strides" in args:
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
    return {"type": t, **(args or {})}


def _show(value) -> str:
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
                layer.bad(f"activation {_show(value)} is a custom function; layerc runs no code from a model file")
                return _SKIP
            value = value["config"]
        return value
    if key in WINDOW_FIELDS and isinstance(value, list):
        return compact(value)
    if key == "noise_shape" and value is not None:
        if not isinstance(value, list) or not value or value[0] is not None:
            layer.bad(f"noise_shape {value!r} fixes the batch axis (layerc's noise_shape leaves it free)")
            return _SKIP
        return value[1:]
    if key == "axis" and cls == "LayerNormalization" and isinstance(value, list) and len(value) == 1:
        return value[0]
    if key == "layer":
        if not isinstance(value, dict) or value.get("class_name") not in RECURRENT or not is_builtin(value):
            layer.bad(f"wraps {value.get('class_name') if isinstance(value, dict) else value!r}; layerc's "
                      "Bidirectional wraps SimpleRNN, LSTM or GRU")
            return _SKIP
        inner_cls = value["class_name"]
        inner = _Layer(layer.problems, layer.notes, inner_cls, f"{layer.name}.layer")
        return {inner_cls: _args(inner_cls, value.get("config") or {}, inner, set(), inner=True) or None}
    if isinstance(value, float):
        return short_float(value)
    return value


def _initializer(value, layer, key):
    if isinstance(value, str):
        return value if value in INITIALIZERS else _unknown_init(value, layer, key)
    if not isinstance(value, dict) or not is_builtin(value):
        return _unknown_init(_show(value) if isinstance(value, dict) else value, layer, key)
    name = _KERAS_INIT.get(value.get("class_name"))
    cfg = {k: v for k, v in (value.get("config") or {}).items() if k != "seed" and v is not None}
    defaults = _INIT_DEFAULTS.get(value.get("class_name"), {})
    if name is None or any(defaults.get(k, _SKIP) != v for k, v in cfg.items()):
        return _unknown_init(_show(value), layer, key)
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
        layer.bad(f"{key} {_show(value) if isinstance(value, dict) else repr(value)} (layerc has L1, L2 and L1L2)")
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


# -- training ---------------------------------------------------------------------------------

def _train(compile_config, notes) -> dict | None:
    """Keras's compile_config as a train section, where it maps; the rest goes to the notes."""
    from ..spec.train import LOSS_ALIASES, METRIC_ALIASES, _models_by_type, LossSpec, MetricSpec, OptimizerSpec
    from ..spec.names import snake_case

    if not isinstance(compile_config, dict) or not compile_config:
        return None
    loss = compile_config.get("loss")
    if isinstance(loss, dict) and is_builtin(loss) and loss.get("class_name") in {v: k for k, v in LOSSES.items()}:
        ltype = {v: k for k, v in LOSSES.items()}[loss["class_name"]]
        model = _models_by_type(LossSpec)[ltype]
        args = {k: short_float(v) if isinstance(v, float) else v for k, v in (loss.get("config") or {}).items()
                if k in model.model_fields and v != model.model_fields[k].default}
        loss = {ltype: args} if args else ltype
    elif isinstance(loss, str) and LOSS_ALIASES.get(loss, loss) in _models_by_type(LossSpec):
        loss = LOSS_ALIASES.get(loss, loss)
    else:
        notes.append(f"training: the loss {_show(loss) if isinstance(loss, dict) else loss!r} has no layerc form; "
                     "no train section (add one to train)")
        return None
    train = {}
    opt = compile_config.get("optimizer")
    otype = None
    if isinstance(opt, str):
        otype = opt.lower() if opt.lower() in OPTIMIZERS else None
    elif isinstance(opt, dict) and is_builtin(opt):
        otype = {v: k for k, v in OPTIMIZERS.items()}.get(opt.get("class_name"))
    if otype is None:
        notes.append(f"training: the optimizer {_show(opt) if isinstance(opt, dict) else opt!r} has no layerc form; "
                     "Keras's default rmsprop is used")
    else:
        model = _models_by_type(OptimizerSpec)[otype]
        args = {}
        for k, v in ((opt.get("config") or {}) if isinstance(opt, dict) else {}).items():
            v = short_float(v) if isinstance(v, float) else v
            if k in model.model_fields and k != "type":
                if isinstance(v, dict):
                    notes.append(f"training: optimizer {k} {_show(v)} not imported; {model.model_fields[k].default} used")
                elif v is not None and v != model.model_fields[k].default:
                    args[k] = v
            elif not (v is None or v is False or k in ("name", "ema_momentum")):
                notes.append(f"training: optimizer option {k}={v!r} not imported (layerc has no such option)")
        train["optimizer"] = {otype: args} if args else otype
    train["loss"] = loss
    metrics = []
    for m in compile_config.get("metrics") or []:
        name = m if isinstance(m, str) else snake_case(m.get("class_name", "")) if isinstance(m, dict) and is_builtin(m) else None
        name = METRIC_ALIASES.get(name, name)
        if name in _models_by_type(MetricSpec) and name not in ("precision", "recall", "auc", "top_k_accuracy"):
            metrics.append(name)
        elif isinstance(m, (str, dict)):
            notes.append(f"training: metric {_show(m) if isinstance(m, dict) else repr(m)} not imported")
    if metrics:
        train["metrics"] = metrics
    return train
