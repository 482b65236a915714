"""A Keras 3 model config as a layerc spec: layers, connections, inputs, outputs, training.

Every layer is checked before anything is returned: a class layerc lacks, an option value
layerc cannot compute, or Python code (a `Lambda`, a custom or registered class) is
collected, so one error lists them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .keras_compile import train_section
from .keras_config import KerasError, is_builtin
from .keras_layers import INPUT_KEYS, Problems, layer_args, usable_name

_INPUT_DTYPES = {"float32": "float32", "float64": "float64", "int32": "int32", "int64": "int32",
                 "int16": "int32", "int8": "int32", "uint8": "int32"}


@dataclass
class Translation:
    """What a Keras config becomes: the spec as data, the Keras layers in their h5 order."""

    data: dict
    keras_layers: list  # (class name, layer name) of each tracked layer, in model.layers order
    kind: str  # Sequential or Functional
    notes: list = field(default_factory=list)


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
            for inp in [data.get("input"), *(data.get("inputs") or {}).values()]:
                if inp and inp.get("dtype") == "float64":
                    del inp["dtype"]  # float inputs take the model's dtype anyway
        else:
            raise KerasError(f"the layers mix dtype policies ({', '.join(sorted(dtypes))}); layerc runs one dtype")
    name = body.get("name")
    head = {"layerc": 1}
    if isinstance(name, str) and usable_name(name):
        head["name"] = name
    train = train_section(config.get("compile_config"), notes)
    data = {**head, **data}
    if train:
        data["train"] = train
    return Translation(data, tracked, "Sequential" if cls == "Sequential" else "Functional", notes)


# -- model structure --------------------------------------------------------------------------

def _sequential(config, entries, problems, notes, dtypes):
    body = config["config"]
    shape = dtype = None
    if entries and entries[0].get("class_name") == "InputLayer":
        first, entries = entries[0], entries[1:]
        shape, dtype = _input(first, problems, notes)
    elif entries:
        cfg = entries[0].get("config") or {}
        raw = next((cfg[k] for k in INPUT_KEYS[:3] if isinstance(cfg.get(k), list)), None)
        if raw is None:
            raw = body.get("build_input_shape") or (config.get("build_config") or {}).get("input_shape")
        elif "input_shape" in cfg and not any(k in cfg for k in INPUT_KEYS[:2]):
            raw = [None, *raw]
        shape = _shape(raw, problems, "the model")
        dtype = _dtype(cfg.get("input_dtype") or (cfg.get("dtype") if isinstance(cfg.get("dtype"), str) else None)
                       or "float32", problems, "the model")
    if not entries:
        raise KerasError("the model has no layers")
    if shape is None and not problems:
        raise KerasError("the Sequential model has no input shape (build it, or give an Input, before saving)")
    layers = [layer_args(e, problems, notes, dtypes) for e in entries]
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
        spec = layer_args(e, problems, notes, dtypes)
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
    layer = Problems(problems, notes, "InputLayer", lname)
    raw = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if not usable_name(lname):
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
