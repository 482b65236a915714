"""Spec -> layer graph: names, connections, cycle check and shape inference.

The one module that knows both the spec models and the runtime layers. Every
check here runs on shapes alone: a bad graph is rejected before any array exists.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .core.base import ShapeError
from .core.registry import make_layer
from .spec.diagnostics import SpecError, did_you_mean
from .spec.document import Spec
from .spec.names import default_names


@dataclass
class Node:
    """One layer in the compiled graph, with its inferred shapes."""

    name: str
    layer: object
    index: int  # position in the spec's `layers:` list
    inputs: list[str]
    input_shape: object  # a shape, or a list of shapes for multi-input layers
    output_shape: tuple
    n_params: int = 0
    n_trainable: int = 0
    macs: int = 0


@dataclass
class Graph:
    """A compiled spec: model inputs, layer nodes in execution order, and outputs."""

    spec: Spec
    inputs: dict  # name -> InputSpec
    nodes: list[Node]
    outputs: list[str]
    sequential: bool
    shapes: dict = field(default_factory=dict)  # tensor name -> shape


def layer_names(spec: Spec) -> list[str]:
    """Each layer's name: its own, or Keras-style `conv2d`, `conv2d_1`, ..."""
    return default_names([(layer.type, layer.name) for layer in spec.layers], spec.input_specs())


def compile_graph(spec: Spec) -> Graph:
    """Resolve names and connections and infer every shape; raises SpecError (located)."""
    smap = spec._source
    diags = []

    def error(path, message, hint=None, key=False):
        if smap is None:
            from .spec.diagnostics import Diagnostic
            diags.append(Diagnostic(message, hint=hint))
        else:
            diags.append(smap.diagnostic(path, message, hint, key=key))

    inputs = spec.input_specs()
    names = layer_names(spec)
    seen: dict[str, int] = {}
    for i, (name, layer) in enumerate(zip(names, spec.layers)):
        if name in inputs:
            error(("layers", i, "name"), f"layer name {name!r} is also the name of a model input")
        elif name in seen:
            error(("layers", i, "name"), f"duplicate layer name {name!r} (also layer {seen[name] + 1})")
        seen.setdefault(name, i)
    if diags:
        raise SpecError(diags)

    known = set(inputs) | set(names)
    sources, sequential = [], spec.inputs is None and all(l.inputs is None for l in spec.layers)
    for i, layer in enumerate(spec.layers):
        if layer.inputs is None:
            srcs = [names[i - 1]] if i > 0 else list(inputs)
            if i == 0 and len(inputs) > 1:
                error(("layers", 0), "with several model inputs the first layer must say which it takes "
                                     "(`inputs: ...`)")
        else:
            srcs = [layer.inputs] if isinstance(layer.inputs, str) else list(layer.inputs)
            for j, s in enumerate(srcs):
                if s not in known:
                    path = ("layers", i, "inputs") + ((j,) if not isinstance(layer.inputs, str) else ())
                    error(path, f"`inputs` names {s!r}, which is no layer or model input",
                          did_you_mean(s, known) or f"known: {', '.join(sorted(known))}")
        sources.append(srcs)
    outputs = [spec.outputs] if isinstance(spec.outputs, str) else list(spec.outputs or [names[-1]])
    for j, out in enumerate(outputs):
        if out not in names:
            error(("outputs",) + ((j,) if not isinstance(spec.outputs, str) else ()),
                  f"`outputs` names {out!r}, which is no layer", did_you_mean(out, names))
    if spec.train is not None and not diags:
        for path, message, hint in spec.train.check_outputs(outputs):
            error(path, message, hint, key=len(path) > 2)
    if hasattr(spec.data, "check_names") and not diags:
        for path, message, hint in spec.data.check_names(list(inputs), outputs):
            error(path, message, hint, key=True)
    if diags:
        raise SpecError(diags)

    order = _topological(names, sources, inputs, error)
    if diags:
        raise SpecError(diags)

    shapes = {name: tuple(s.shape) for name, s in inputs.items()}
    nodes = []
    for i in order:
        s = spec.layers[i]
        if any(src not in shapes for src in sources[i]):
            continue  # an input already failed; its error is reported
        layer = make_layer(s, names[i], seed=_layer_seed(spec.seed, i), dtype=spec.dtype)
        in_shapes = [shapes[src] for src in sources[i]]
        multi = getattr(layer, "multi_input", False)
        counts = getattr(layer, "input_counts", None)  # a multi-input layer that may take one
        if counts is not None and len(in_shapes) not in counts:
            error(("layers", i, "inputs"), f"{s.type} takes {' to '.join(map(str, counts[::len(counts) - 1]))} "
                  f"inputs; '{names[i]}' gets {len(in_shapes)}")
            continue
        if multi and counts is None and len(in_shapes) < 2:
            error(("layers", i, "type"), f"{s.type} merges two or more inputs; '{names[i]}' gets "
                  f"{len(in_shapes)}", "list them in `inputs: [a, b]`", key=True)
            continue
        if not multi and len(in_shapes) != 1:
            error(("layers", i, "inputs"), f"{s.type} takes one input; '{names[i]}' gets {len(in_shapes)}",
                  "merge them first with Add or Concatenate")
            continue
        in_shape = in_shapes if multi else in_shapes[0]
        try:
            out_shape = tuple(layer.output_shape(in_shape))
            weights = layer.weight_specs(in_shape)
            macs = layer.macs(in_shape)
        except ShapeError as e:
            came = ", ".join(f"'{src}' {keras_shape(shapes[src])}" for src in sources[i])
            error(("layers", i, "type"), f"layer '{names[i]}' ({s.type}): {e.message} [input from {came}]",
                  e.hint, key=True)
            continue
        shapes[names[i]] = out_shape
        n_params = sum(w.size for w in weights)
        nodes.append(Node(names[i], layer, i, sources[i], in_shape, out_shape, n_params,
                          sum(w.size for w in weights if w.trainable and not layer.frozen), macs))
    if diags:
        raise SpecError(diags)
    return Graph(spec, inputs, nodes, outputs, sequential, shapes)


def _topological(names, sources, inputs, error) -> list[int]:
    """Layer indices in an order where every layer follows its inputs (spec order where
    free); a cycle is reported with the layers that form it."""
    import heapq

    index = {n: i for i, n in enumerate(names)}
    users: dict[int, list[int]] = {i: [] for i in range(len(names))}
    pending = [0] * len(names)
    for i, srcs in enumerate(sources):
        for src in srcs:
            if src in index:
                users[index[src]].append(i)
                pending[i] += 1
    ready = [i for i, n in enumerate(pending) if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(names):
        left = [i for i, n in enumerate(pending) if n > 0]
        trail, i = [], left[0]
        while i not in trail:
            trail.append(i)
            i = next(index[s] for s in sources[i] if s in index and pending[index[s]] > 0)
        cycle = trail[trail.index(i):]
        text = " -> ".join(names[j] for j in [*reversed(cycle), cycle[-1]])
        error(("layers", cycle[-1], "inputs"), f"the layers form a cycle: {text}",
              "a layer's inputs must come from earlier in the graph")
    return order


def _layer_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index * 7919 + 17) % (2**63)


def keras_shape(shape) -> str:
    dims = ["None", *("None" if d is None else str(d) for d in shape)]
    return "(" + ", ".join(dims) + ")"

