"""A Keras 3 model config as a layerc spec: layers, connections, inputs, outputs, training.

Every layer is checked before anything is returned: a class layerc lacks, an option value
layerc cannot compute, or Python code (a `Lambda`, a custom or registered class) is
collected, so one error lists them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .keras_compile import train_section
from .keras_config import KerasError, h5_groups, is_builtin
from .keras_flatten import flatten, needs_flattening
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
    groups: dict = field(default_factory=dict)  # layer name -> its group in model.weights.h5
    swapped: set = field(default_factory=set)  # layers whose kernel Keras stores with the last two axes swapped
    renamed: dict = field(default_factory=dict)  # a flattened layer's name -> its name in its nested model


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
    flat = None
    if needs_flattening(entries):
        flat = flatten(config)
        problems += flat.problems
        body = {**body, "layers": flat.layers, "input_layers": flat.input_layers, "output_layers": flat.output_layers}
        data, tracked = _functional(body, flat.layers, problems, notes, dtypes)
    elif cls == "Sequential":
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
    if flat is not None:
        tracked = [(c, n) for c, n in tracked if n in flat.groups]
        groups, swapped, renamed = flat.groups, flat.swapped, flat.renamed
    else:
        groups = {n: f"layers/{g}" for (_, n), g in zip(tracked, h5_groups([c for c, _ in tracked]))}
        swapped, renamed = set(), {}
    return Translation(data, tracked, "Sequential" if cls == "Sequential" else "Functional", notes, groups,
                       swapped, renamed)


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
    masks = _mask_ops(entries, body, problems)
    for e in entries:
        cfg = e.get("config") or {}
        lname = e.get("name") or cfg.get("name")
        if lname in masks:
            continue
        tracked.append((e.get("class_name"), lname))
        if e.get("class_name") == "InputLayer":
            shape, dtype = _input(e, problems, notes)
            inputs[lname] = {"shape": shape or [1], **({"dtype": dtype} if dtype and dtype != "float32" else {})}
            continue
        spec = layer_args(e, problems, notes, dtypes)
        spec["_sources"], causal = _inbound(e, problems, lname, masks)
        if causal and isinstance(spec.get("MultiHeadAttention"), dict):
            spec["MultiHeadAttention"]["use_causal_mask"] = True
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


# The ops Keras 3 records in a functional graph to carry Embedding(mask_zero)'s mask to the
# layers after it (passed as their `mask` argument): not layers; layerc derives the same
# masks itself.
_MASK_OPS = ("NotEqual", "LogicalAnd", "LogicalOr")


def _mask_ops(entries, body, problems) -> set:
    """The names of the mask ops: each a NotEqual(tensor, 0) or a LogicalAnd/Or of mask ops,
    used only as some layer's `mask` (another use is reported)."""
    ops = {}
    for e in entries:
        nodes = e.get("inbound_nodes")
        if (e.get("class_name") in _MASK_OPS and str(e.get("module")).startswith("keras.src.ops")
                and isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], dict)):
            args = nodes[0].get("args") or []
            ops[e.get("name")] = (e.get("class_name"), args)
    used = set()
    for e in entries:
        for node in e.get("inbound_nodes") or []:
            if not isinstance(node, dict):
                continue
            args = node.get("args") or []
            if e.get("name") in ops:
                args = [a for a in args if _history(a) not in ops]  # a mask op's mask operands
            used |= {_history(t) for t in _tensors(args)}
            used |= {_history(t) for k, v in (node.get("kwargs") or {}).items() if k != "mask" for t in _tensors([v])}
    used |= {r[0] for r in (body.get("output_layers") or []) if isinstance(r, list) and r}
    for name, (cls, args) in ops.items():
        if name in used or (cls == "NotEqual" and (len(args) != 2 or args[1] != 0)):
            problems.append(f"{cls} '{name}': an op on tensors, not a layer (layerc has ops only to carry "
                            "Embedding(mask_zero)'s mask)")
    return set(ops)


def _tensors(values) -> list:
    out = []
    for v in values:
        if isinstance(v, list):
            out += _tensors(v)
        elif isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
            out.append(v)
    return out


def _history(t):
    hist = (t.get("config") or {}).get("keras_history") if isinstance(t, dict) else None
    return hist[0] if isinstance(hist, list) and hist else None


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


def _inbound(entry, problems, lname, masks=frozenset()) -> tuple[list, bool]:
    """(the layer's sources, whether it is called with use_causal_mask)."""
    cls = entry.get("class_name")
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
        n = len(nodes) if isinstance(nodes, list) else 0
        problems.append(f"{cls} '{lname}': called {n} times" + (" (a shared layer); layerc calls each layer once"
                                                                if n > 1 else " (inbound_nodes not in Keras 3's form)"))
        return [], False
    args, kwargs = nodes[0].get("args") or [], dict(nodes[0].get("kwargs") or {})
    attention = cls == "MultiHeadAttention"
    causal = kwargs.pop("use_causal_mask", False) if attention else False
    if attention and isinstance(kwargs.get("key"), dict):
        args = [*args, kwargs.pop("key")]
    extra = {k: v for k, v in kwargs.items() if not (k in ("mask", "training") and v in (None, False))
             and not (k == "mask" and _history(v) in masks)}  # Keras's own mask, which layerc derives too
    if attention:  # query, value[, key]: all three positional
        ok = 2 <= len(args) <= 3 and causal in (True, False)
        tensors = args
    else:
        ok = len(args) == 1
        tensors = args[0] if args and isinstance(args[0], list) else args[:1]
    if extra or not ok:
        problems.append(f"{cls} '{lname}': called with arguments layerc has no form for "
                        f"({', '.join(extra) or f'{len(args)} positional'})")
        return [], False
    srcs = []
    for t in tensors:
        if not isinstance(t, dict) or t.get("class_name") != "__keras_tensor__":
            problems.append(f"{cls} '{lname}': an input that is not a layer's output")
            return [], False
        hist = (t.get("config") or {}).get("keras_history")
        if not isinstance(hist, list) or len(hist) != 3 or list(hist[1:]) != [0, 0]:
            problems.append(f"{cls} '{lname}': takes a shared layer's or a multi-output layer's output "
                            f"({hist}); layerc has one output per layer")
            return [], False
        srcs.append(hist[0])
    if attention and len(set(srcs)) == 1:
        srcs = srcs[:1]  # self-attention: one input
    return srcs, causal


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
