"""A Keras 3 model config with nested models and tensor ops, as one flat functional graph.

`keras.applications` models (and a user's backbone with a new head) use three things a
flat layerc spec has no form for, each rewritten here into plain Keras layers before the
layers are translated:

- a Sequential or Functional model used as a layer: its layers take its place, under
  their own names (a name the outer model or an earlier one has becomes `model_name`:
  Keras on torch refuses dots in names), its input layers are the tensors it was called
  on, and its output is its last layer's (a frozen model's layers are frozen);
- the ops Keras records for `x + y`, `x * 0.5`, `x - 1`, `x / 6`: two tensors become the
  merge layer (`Add`, `Subtract`, `Multiply`), a tensor and a number a `Rescaling`;
- `CustomScaleLayer` (InceptionResNetV2's `x + r * scale`) becomes a `Rescaling` of `r`
  and an `Add`; a grouped `Conv2D` with one group per channel (ConvNeXt's depthwise
  convolution) a `DepthwiseConv2D`, its kernel's last two axes swapped on import.

Also where each layer's weights sit in `model.weights.h5`: a nested model's layers are
under its group (`layers/sequential/layers/conv2d/vars`), the ops have none.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .keras_config import h5_groups

MODELS = ("Sequential", "Functional", "Model")
_OPS = {"Add", "Subtract", "Multiply", "TrueDivide", "Divide"}
_MERGE_OF_OP = {"Add": "Add", "Subtract": "Subtract", "Multiply": "Multiply"}


@dataclass
class Flat:
    """A flat functional body: entries with their inbound nodes, and each layer's h5 group."""

    layers: list
    input_layers: list
    output_layers: list
    groups: dict = field(default_factory=dict)  # layer name -> "layers/<group>[/layers/<group>...]"
    renamed: dict = field(default_factory=dict)  # flat name -> the layer's name in its nested model
    swapped: set = field(default_factory=set)  # layers whose kernel's last two axes Keras stores swapped
    problems: list = field(default_factory=list)


def needs_flattening(entries) -> bool:
    """Whether a model's layers include a nested model, a tensor op or a rewritten layer."""
    return any(_is_model(e) or _is_op(e) or e.get("class_name") == "CustomScaleLayer" or _grouped(e)
               for e in entries if isinstance(e, dict))


def flatten(config) -> Flat:
    """The model config (`{class_name, config}`) as a flat functional body."""
    flat = Flat([], [], [])
    body = config["config"]
    taken = {_name(e) for e in body.get("layers") or [] if isinstance(e, dict) and not _is_model(e)}
    if config.get("class_name") == "Sequential":
        outs = _sequential(body, None, "layers", flat, taken)
    else:
        outs = _functional(body, None, "layers", flat, taken)
    flat.output_layers = [[o, 0, 0] for o in outs]
    return flat


def plain_groups(entries) -> dict:
    """Each tracked layer's h5 group in a model without nesting (layers/<group>)."""
    tracked = [(e.get("class_name"), e.get("name") or (e.get("config") or {}).get("name")) for e in entries]
    return {n: f"layers/{g}" for (_, n), g in zip(tracked, h5_groups([c for c, _ in tracked]))}


# -- one model's layers ------------------------------------------------------------------

def _name(e):
    return e.get("name") or (e.get("config") or {}).get("name")


def _is_model(e) -> bool:
    return e.get("class_name") in MODELS and isinstance(e.get("config"), dict) and "layers" in e["config"]


def _is_op(e) -> bool:
    return _any_op(e) and e.get("class_name") in _OPS


def _any_op(e) -> bool:
    """An op on tensors (`keras.src.ops`): not a layer, so no group in the h5 file."""
    return str(e.get("module", "")).startswith("keras.src.ops")


def _grouped(e) -> bool:
    cfg = e.get("config") or {}
    return e.get("class_name") == "Conv2D" and isinstance(cfg.get("groups"), int) and cfg["groups"] > 1


def _unique(name, scope, taken) -> str:
    """A top-level layer's own name (reserved in `taken` before any nested model is
    expanded); a nested one's, or `scope_name` when that is taken."""
    if scope is None:
        taken.add(name)
        return name
    new, i = (name if name not in taken else f"{scope}_{name}"), 1
    while new in taken:
        new, i = f"{scope}_{name}_{i}", i + 1
    taken.add(new)
    return new


def _tensor(name, like=None) -> dict:
    cfg = dict((like or {}).get("config") or {})
    cfg["keras_history"] = [name, 0, 0]
    return {"class_name": "__keras_tensor__", "config": cfg}


def _rename(value, alias):
    """Tensor references in a call's args, renamed to their flat layers."""
    if isinstance(value, list):
        return [_rename(v, alias) for v in value]
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        hist = (value.get("config") or {}).get("keras_history")
        if isinstance(hist, list) and hist and hist[0] in alias and list(hist[1:]) == [0, 0]:
            return _tensor(alias[hist[0]], value)
        return value
    if isinstance(value, dict):
        return {k: _rename(v, alias) for k, v in value.items()}
    return value


def _sequential(body, sources, base, flat, taken) -> list:
    """A Sequential's layers chained; `sources` the tensors it is called on (None at the top)."""
    entries = [e for e in body.get("layers") or [] if isinstance(e, dict)]
    scope = body.get("name") if sources is not None else None
    if entries and entries[0].get("class_name") == "InputLayer":
        first, entries = entries[0], entries[1:]
        if sources is None:
            flat.layers.append({**first, "name": _unique(_name(first), scope, taken), "inbound_nodes": []})
            sources = [flat.layers[-1]["name"]]
            flat.input_layers.append([sources[0], 0, 0])
    if sources is None:  # the input shape on the first layer or the model (Keras 2's form)
        shape = body.get("build_input_shape") or ((entries[0].get("config") or {}).get("batch_shape")
                                                  if entries else None)
        cfg = entries[0].get("config") or {} if entries else {}
        shape = shape or cfg.get("batch_input_shape") or ([None, *cfg["input_shape"]] if cfg.get("input_shape") else None)
        name = _unique("input_layer", None, taken)
        flat.layers.append({"module": "keras.layers", "class_name": "InputLayer", "name": name, "inbound_nodes": [],
                            "config": {"batch_shape": shape, "dtype": "float32", "name": name}})
        flat.input_layers.append([name, 0, 0])
        sources = [name]
    groups = h5_groups([e.get("class_name") for e in entries])
    prev = sources
    for e, g in zip(entries, groups):
        node = {"args": [_tensor(prev[0])] if len(prev) == 1 else [[_tensor(p) for p in prev]], "kwargs": {}}
        prev = _layer({**e, "inbound_nodes": [node]}, {}, f"{base}/{g}", scope, flat, taken)
    return prev


def _functional(body, sources, base, flat, taken) -> list:
    entries = [e for e in body.get("layers") or [] if isinstance(e, dict)]
    scope = body.get("name") if sources is not None else None
    ins = [r[0] for r in _refs(body.get("input_layers"))]
    alias = {}
    if sources is not None:
        if len(ins) != len(sources):
            flat.problems.append(f"model '{body.get('name')}': called on {len(sources)} tensors, takes {len(ins)}")
            return []
        alias = dict(zip(ins, sources))
    tracked = [e for e in entries if not _any_op(e)]
    groups = dict(zip(map(id, tracked), h5_groups([e.get("class_name") for e in tracked])))
    for e in entries:
        name = _name(e)
        if e.get("class_name") == "InputLayer":
            if sources is None:
                new = _unique(name, scope, taken)
                flat.layers.append({**e, "name": new, "config": {**(e.get("config") or {}), "name": new}})
                flat.input_layers.append([new, 0, 0])
                alias[name] = new
            continue
        outs = _layer(e, alias, f"{base}/{groups[id(e)]}" if id(e) in groups else None, scope, flat, taken)
        if outs:
            alias[name] = outs[0] if len(outs) == 1 else outs
    out_refs = [r[0] for r in _refs(body.get("output_layers"))]
    outs = []
    for o in out_refs:
        a = alias.get(o, o)
        if isinstance(a, list):
            flat.problems.append(f"model '{body.get('name')}': an output is a nested model's several outputs")
            a = a[0]
        outs.append(a)
    return outs


def _refs(value) -> list:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    return [v for v in value if isinstance(v, list) and v and isinstance(v[0], str)] if isinstance(value, list) else []


def _call_tensors(e, alias) -> list:
    nodes = e.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
        return None
    args = nodes[0].get("args") or []
    tensors = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    names = []
    for t in tensors:
        hist = (t.get("config") or {}).get("keras_history") if isinstance(t, dict) else None
        if not isinstance(hist, list) or not hist:
            return None
        names.append(alias.get(hist[0], hist[0]))
    return names


def _layer(e, alias, group, scope, flat, taken) -> list:
    """Add one entry (a layer, a nested model, an op) to `flat`; its output layer names."""
    name = _name(e)
    cls = e.get("class_name")
    if _is_model(e):
        srcs = _call_tensors(e, alias)
        if srcs is None or any(isinstance(s, list) for s in srcs):
            flat.problems.append(f"{cls} '{name}': a nested model called {len(e.get('inbound_nodes') or [])} "
                                 "times or on another nested model's several outputs; layerc calls each layer once")
            return []
        inner = e["config"]
        inner = {**inner, "name": inner.get("name") or name}
        if inner.get("trainable") is False:  # a frozen model freezes all its layers, as in Keras
            inner["layers"] = [{**x, "config": {**(x.get("config") or {}), "trainable": False}}
                               for x in inner.get("layers") or [] if isinstance(x, dict)]
        if cls == "Sequential":
            return _sequential(inner, srcs, f"{group}/layers", flat, taken)
        return _functional(inner, srcs, f"{group}/layers", flat, taken)
    new = _unique(name, scope, taken) if isinstance(name, str) else name
    e = {**e, "name": new, "config": {**(e.get("config") or {}), "name": new},
         "inbound_nodes": _rename(e.get("inbound_nodes"), alias)}
    if _is_op(e):
        return [_op(e, flat, taken)]
    if cls == "CustomScaleLayer" and str(e.get("module", "")).startswith("keras.src.applications"):
        return [_custom_scale(e, flat, taken)]
    if _grouped(e):
        e = _depthwise(e, flat)
    if group is not None:
        flat.groups[new] = group
        if new != name:
            flat.renamed[new] = name
    flat.layers.append(e)
    return [new]


def _layer_entry(cls, name, config, args) -> dict:
    return {"module": "keras.layers", "class_name": cls, "registered_name": None, "name": name,
            "config": {"name": name, **config}, "inbound_nodes": [{"args": args, "kwargs": {}}]}


def _op(e, flat, taken) -> str:
    """`x + y`, `x * 0.5`, ... as a merge layer or a Rescaling (the op is left as it is when
    it has no layer form, and reported when its layer is translated)."""
    cls, name = e["class_name"], e["name"]
    nodes = e.get("inbound_nodes") or [{}]
    args = nodes[0].get("args") or [] if isinstance(nodes[0], dict) else []
    tensors = [a for a in args if isinstance(a, dict) and a.get("class_name") == "__keras_tensor__"]
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if len(args) == 2 and len(tensors) == 2 and cls in _MERGE_OF_OP:
        flat.layers.append(_layer_entry(_MERGE_OF_OP[cls], name, {}, [tensors]))
        return name
    if len(args) == 2 and len(tensors) == 1 and len(numbers) == 1:
        c, first = float(numbers[0]), args[0] is tensors[0]
        scale, offset = {("Add", True): (1.0, c), ("Add", False): (1.0, c), ("Multiply", True): (c, 0.0),
                         ("Multiply", False): (c, 0.0), ("Subtract", True): (1.0, -c),
                         ("Subtract", False): (-1.0, c)}.get((cls, first), (None, None))
        if cls in ("TrueDivide", "Divide") and first and c != 0:
            scale, offset = 1.0 / c, 0.0
        if scale is not None:
            flat.layers.append(_layer_entry("Rescaling", name, {"scale": scale, "offset": offset}, tensors))
            return name
    e = {**e, "class_name": f"{cls} (op)"}
    flat.layers.append(e)
    return name


def _custom_scale(e, flat, taken) -> str:
    """InceptionResNetV2's CustomScaleLayer: inputs[0] + inputs[1] * scale."""
    name = e["name"]
    nodes = e.get("inbound_nodes") or [{}]
    args = nodes[0].get("args") or [] if isinstance(nodes[0], dict) else []
    tensors = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    scale = (e.get("config") or {}).get("scale")
    if len(tensors) != 2 or not isinstance(scale, (int, float)):
        flat.layers.append(e)
        return name
    scaled = _unique(f"{name}_scaled", name, taken)
    flat.layers.append(_layer_entry("Rescaling", scaled, {"scale": float(scale), "offset": 0.0}, [tensors[1]]))
    flat.layers.append(_layer_entry("Add", name, {}, [[tensors[0], _tensor(scaled)]]))
    return name


def _depthwise(e, flat) -> dict:
    """A Conv2D with groups == its input channels == filters, as the DepthwiseConv2D it is."""
    cfg = dict(e["config"])
    shape = (e.get("build_config") or {}).get("input_shape")
    channels = shape[-1] if isinstance(shape, list) and shape else None
    if cfg.get("groups") != channels or cfg.get("filters") != channels:
        return e  # another grouping: reported with its layer (groups=...)
    new = {k: v for k, v in cfg.items() if k not in ("filters", "groups")}
    for old, key in (("kernel_initializer", "depthwise_initializer"), ("kernel_regularizer", "depthwise_regularizer"),
                     ("kernel_constraint", "depthwise_constraint")):
        if old in new:
            new[key] = new.pop(old)
    new["depth_multiplier"] = 1
    flat.swapped.add(e["name"])
    return {**e, "class_name": "DepthwiseConv2D", "config": new}
