"""ONNX export: a compiled layerc model as an ONNX graph that ONNX Runtime runs with layerc's answers.

Tensors stay in Keras's channels-last layout between layers (so Flatten keeps Keras's order);
convolutions and pooling transpose to ONNX's channels-first around themselves, and the
recurrent ops run time-major (ONNX Runtime's CPU provider implements layout 0 only).
A mask from `Embedding(mask_zero=True)` becomes the recurrent ops' `sequence_lens`: exact for
right-padded sequences (layerc's default `padding: post`). The graph is built with
onnx.helper and onnx.numpy_helper only.
"""
from __future__ import annotations

import json

import numpy as np

from . import ExportError

DEFAULT_OPSET = 17
OPSETS = range(17, 22)  # tested with ONNX Runtime in tests/interop

# Keras activation -> (ONNX op, attributes) for tensors; composed ones are in _activation
_ELEMENTWISE = {
    "relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
    "softmax": ("Softmax", {"axis": -1}), "elu": ("Elu", {"alpha": 1.0}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.2}), "softplus": ("Softplus", {}),
    "softsign": ("Softsign", {}), "hard_sigmoid": ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    "hard_silu": ("HardSwish", {}), "hard_swish": ("HardSwish", {}),
}
# Keras activation -> (ONNX recurrent activation, alpha, beta) inside RNN/GRU/LSTM
_RECURRENT_ACT = {
    "sigmoid": ("Sigmoid", None, None), "tanh": ("Tanh", None, None), "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0), "hard_sigmoid": ("HardSigmoid", 1 / 6, 0.5),
    "leaky_relu": ("LeakyRelu", 0.2, None), "elu": ("Elu", 1.0, None),
    "softsign": ("Softsign", None, None), "softplus": ("Softplus", None, None),
}
_LSTM_ORDER = (0, 3, 1, 2)  # ONNX's i, o, f, c from Keras's i, f, c, o


class _Unsupported(Exception):
    """Raised while building a layer: (path inside the layer's spec, message)."""


def onnx_module():
    """The onnx package, or ExportError saying which extra to install."""
    try:
        import onnx
    except ImportError:
        raise ExportError('ONNX export needs the onnx package: pip install "layerc[onnx]"') from None
    return onnx


def save_onnx(model, path, opset: int = DEFAULT_OPSET, class_names=None) -> None:
    """Write a layerc Model (with its current weights) to an ONNX file, atomically.

    Raises SpecError naming the spec line of a layer or option that cannot be exported
    (nothing is written), ExportError for a missing onnx package or an unsupported opset.
    """
    from ..runs import atomic_write

    proto = to_onnx(model, opset, class_names)
    atomic_write(path, proto.SerializeToString())


def to_onnx(model, opset: int = DEFAULT_OPSET, class_names=None):
    """The onnx.ModelProto of a layerc Model, checked with `onnx.checker` (full_check)."""
    onnx = onnx_module()
    from onnx import helper

    from .. import __version__
    from ..jobs import _resolved_yaml

    if opset not in OPSETS:
        raise ExportError(f"ONNX opset {opset} is not supported; layerc writes opsets "
                          f"{OPSETS.start}-{OPSETS.stop - 1} (default {DEFAULT_OPSET})")
    spec = model.spec
    _check_exportable(model)
    model.build()
    g = _Graph(onnx, opset)
    values, masks = {}, {}
    inputs = []
    for name in model.input_names:
        ispec = model.graph.inputs[name]
        elem = onnx.TensorProto.INT32 if ispec.dtype == "int32" else onnx.TensorProto.FLOAT
        inputs.append(helper.make_tensor_value_info(name, elem, ["batch", *ispec.shape]))
        values[name], masks[name] = name, None
        if ispec.dtype == "int32":
            g.int32.add(name)
    for node in model.nodes:
        g.begin(node.name)
        x = [values[s] for s in node.inputs]
        m = [masks[s] for s in node.inputs]
        if not node.layer.multi_input:
            x, m = x[0], m[0]
        try:
            y, mask = _LAYERS[node.layer.spec.type](g, node, x, m)
        except _Unsupported as e:
            from ..jobs import _diag
            from ..spec.diagnostics import SpecError

            path, message = e.args
            raise SpecError([_diag(spec, ("layers", node.index, *path), message)]) from None
        values[node.name], masks[node.name] = g.finish(y), mask
    outputs = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", *model.graph.shapes[n]])
               for n in model.output_names]
    graph = helper.make_graph(g.nodes, model.name, inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="layerc", producer_version=__version__,
                              doc_string=spec.description or "")
    # the oldest IR version the opset allows: ONNX Runtime releases lag onnx's newest IR
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    meta = {"layerc.version": __version__, "layerc.spec_name": model.name,
            "layerc.spec_sha256": _sha256(_resolved_yaml(spec))}
    if class_names:
        meta["layerc.class_names"] = json.dumps([str(c) for c in class_names])
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


# -- what cannot be exported -------------------------------------------------------------------
def _check_exportable(model):
    """Every layer or option ONNX cannot express, as one located SpecError."""
    from ..jobs import _diag
    from ..spec.diagnostics import SpecError

    spec, problems = model.spec, []
    if spec.dtype != "float32":
        problems.append(_diag(spec, ("dtype",), f"ONNX export writes float32 models; this spec "
                              f"computes in {spec.dtype}"))
    for node in model.nodes:
        s = node.layer.spec
        if s.type not in _LAYERS:
            problems.append(_diag(spec, ("layers", node.index), f"layer '{node.name}' ({s.type}) "
                                  "cannot be exported to ONNX: no ONNX form for this layer type"))
            continue
        inner, where = s, ("layers", node.index)
        while inner.type in ("Bidirectional", "TimeDistributed"):  # the wrapped layer's options
            inner = inner.layer
            where += ("layer", inner.type)
        if inner.type in ("SimpleRNN", "LSTM", "GRU"):
            for key in ("activation", "recurrent_activation"):
                act = getattr(inner, key, None)
                if act is not None and act not in _RECURRENT_ACT:
                    problems.append(_diag(spec, where + (key,), f"layer '{node.name}' ({inner.type}) "
                                          f"cannot be exported to ONNX with {key} {act}: ONNX's "
                                          f"{inner.type if inner.type != 'SimpleRNN' else 'RNN'} takes "
                                          f"{', '.join(_RECURRENT_ACT)}"))
    padding = getattr(spec.data, "padding", None)
    if padding == "pre" and any(getattr(n.layer.spec, "mask_zero", False) for n in model.nodes):
        problems.append(_diag(spec, ("data", "padding"), "ONNX export carries Embedding's mask as "
                              "sequence lengths, which needs right-padded sequences (padding: post)"))
    if problems:
        raise SpecError(problems)


# -- the graph under construction ---------------------------------------------------------------
class _Graph:
    """Nodes and initializers of the graph being built; a layer's values are named
    '<layer>/...' and its output the layer's own name."""

    def __init__(self, onnx, opset):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers = [], []
        self._count = 0
        self._prefix = ""
        self._start = 0
        self.int32 = set()  # values holding int32 token ids (the model's int32 inputs)

    def begin(self, layer_name):
        self._prefix, self._start = layer_name, len(self.nodes)

    def finish(self, y):
        """Name the layer's output y after the layer (an Identity when y is not its own)."""
        name = self._prefix
        if y == name:
            return y
        if not any(y in n.output for n in self.nodes[self._start:]):  # another layer's, or an input
            self.op("Identity", [y], out=name)
            return name
        for n in self.nodes[self._start:]:
            n.input[:] = [name if v == y else v for v in n.input]
            n.output[:] = [name if v == y else v for v in n.output]
        return name

    def name(self, hint):
        self._count += 1
        return f"{self._prefix}/{hint}_{self._count}"

    def const(self, array, hint="const"):
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, values, hint="shape"):
        return self.const(np.asarray(values, np.int64), hint)

    def scalar(self, value, hint="c"):
        return self.const(np.asarray(value, np.float32), hint)

    def op(self, op_type, inputs, out=None, n_out=1, **attrs):
        from onnx import helper

        if isinstance(out, list):  # given names, "" for an optional output not wanted
            outs = out
        else:
            outs = [out] if out else [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.name(op_type), **attrs))
        if isinstance(out, list):
            return next(o for o in outs if o)
        return outs[0] if n_out == 1 else outs

    def reduce(self, op_type, x, axes, keepdims):
        """ReduceMean/ReduceMax (axes an attribute before opset 18, an input since)."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def transpose(self, x, perm):
        return self.op("Transpose", [x], perm=list(perm))

    def reverse_time(self, x):
        """x reversed along axis 1 (a dynamic length)."""
        return self.op("Slice", [x, self.ints([-1], "start"), self.ints([-(2 ** 63)], "end"),
                                 self.ints([1], "axis"), self.ints([-1], "step")])


# -- activations ---------------------------------------------------------------------------------
def _activation(g, name, x):
    if name in (None, "linear"):
        return x
    if name in _ELEMENTWISE:
        op, attrs = _ELEMENTWISE[name]
        return g.op(op, [x], **attrs)
    if name in ("silu", "swish"):
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if name == "selu":
        from ..core.activations import SELU_ALPHA, SELU_SCALE

        return g.op("Selu", [x], alpha=SELU_ALPHA, gamma=SELU_SCALE)
    if name == "gelu":  # exact: x * 0.5 * (1 + erf(x / sqrt(2))), as layerc and Keras
        erf = g.op("Erf", [g.op("Mul", [x, g.scalar(1 / np.sqrt(2))])])
        phi = g.op("Mul", [g.op("Add", [erf, g.scalar(1.0)]), g.scalar(0.5)])
        return g.op("Mul", [x, phi])
    raise AssertionError(f"activation {name} has no ONNX form")


# -- layers: each (graph, node, x, mask) -> (output value, output mask) ------------------------------
def _w(node, key):
    return np.asarray(node.layer.weights[key], np.float32)


def _dense(g, node, x, mask):
    s = node.layer.spec
    y = g.op("MatMul", [x, g.const(_w(node, "kernel"), "kernel")])
    if s.use_bias:
        y = g.op("Add", [y, g.const(_w(node, "bias"), "bias")])
    return _activation(g, s.activation, y), mask


def _spatial(node):
    """(input spatial sizes or None, kernel, strides, dilations, paddings) of a conv/pool
    node, in ONNX's channels-first order (Conv1D and MaxPooling1D on one axis)."""
    from ..spec.layers import pair, single

    s, shape = node.layer.spec, node.input_shape
    rank = 2 if s.type.endswith("2D") else 1
    conv = hasattr(s, "kernel_size")
    grab = pair if rank == 2 else (lambda v: (single(v),))
    k = grab(s.kernel_size if conv else s.pool_size)
    strides = grab((s.strides if s.strides is not None else s.pool_size))
    dil = grab(s.dilation_rate) if conv else (1,) * rank
    return shape[:rank], k, strides, dil, s.padding


def _pads(g, sizes, k, strides, dil, padding):
    """ONNX padding attributes: explicit pads as Keras computes them, or SAME_UPPER (Keras's
    extra pad at the end) for an axis of unknown size."""
    from ..core.conv import conv_pads

    if padding == "valid":
        return {}
    if padding != "causal" and any(n is None for n in sizes):
        return {"auto_pad": "SAME_UPPER"}
    pads = [conv_pads(n, kk, st, d, padding) for n, kk, st, d in zip(sizes, k, strides, dil)]
    return {"pads": [p[0] for p in pads] + [p[1] for p in pads]}


def _channels_first(g, x, rank, op_fn):
    first, last = ((0, 3, 1, 2), (0, 2, 3, 1)) if rank == 2 else ((0, 2, 1), (0, 2, 1))
    return g.transpose(op_fn(g.transpose(x, first)), last)


def _conv(g, node, x, mask):
    s = node.layer.spec
    sizes, k, strides, dil, padding = _spatial(node)
    W = _w(node, "kernel")
    W = W.transpose(3, 2, 0, 1) if len(k) == 2 else W.transpose(2, 1, 0)  # (F, C, *k)
    ins = [g.const(W, "kernel")] + ([g.const(_w(node, "bias"), "bias")] if s.use_bias else [])
    attrs = dict(kernel_shape=list(k), strides=list(strides), dilations=list(dil),
                 **_pads(g, sizes, k, strides, dil, padding))
    y = _channels_first(g, x, len(k), lambda t: g.op("Conv", [t, *ins], **attrs))
    return _activation(g, s.activation, y), None


def _pool(g, node, x, mask):
    sizes, k, strides, dil, padding = _spatial(node)
    op = "AveragePool" if node.layer.mode == "avg" else "MaxPool"
    attrs = dict(kernel_shape=list(k), strides=list(strides), **_pads(g, sizes, k, strides, dil, padding))
    return _channels_first(g, x, len(k), lambda t: g.op(op, [t], **attrs)), None


def _global_pool(g, node, x, mask):
    s = node.layer.spec
    rank = node.layer.rank
    axes = (1, 2) if rank == 2 else (1,)
    if mask is not None and s.type == "GlobalAveragePooling1D":  # the mean of the unmasked steps
        m = g.op("Unsqueeze", [g.op("Cast", [mask], to=g.onnx.TensorProto.FLOAT), g.ints([-1], "axes")])
        total = g.reduce("ReduceSum", g.op("Mul", [x, m]), axes, s.keepdims)
        count = g.op("Max", [g.reduce("ReduceSum", m, axes, s.keepdims), g.scalar(1.0)])
        return g.op("Div", [total, count]), None
    op = "ReduceMax" if s.type.startswith("GlobalMax") else "ReduceMean"
    return g.reduce(op, x, axes, s.keepdims), None


def _batch_norm(g, node, x, mask):
    s = node.layer.spec
    shape = [1] * (len(node.input_shape) + 1)
    a = s.axis % len(shape)
    shape[a] = node.input_shape[a - 1]
    f = np.float32
    r = 1 / np.sqrt(_w(node, "moving_variance") + f(s.epsilon))  # Keras's epsilon, as layerc
    scale = r * _w(node, "gamma") if s.scale else r
    y = g.op("Mul", [g.op("Sub", [x, g.const(_w(node, "moving_mean").reshape(shape), "moving_mean")]),
                     g.const(scale.reshape(shape), "scale")])
    if s.center:
        y = g.op("Add", [y, g.const(_w(node, "beta").reshape(shape), "beta")])
    return y, mask


def _layer_norm(g, node, x, mask):
    s, shape_in = node.layer.spec, node.input_shape
    norm = [a + 1 for a in node.layer._axes(shape_in)]
    shape = [1] + [shape_in[i - 1] if i in norm else 1 for i in range(1, len(shape_in) + 1)]
    d = g.op("Sub", [x, g.reduce("ReduceMean", x, norm, True)])
    var = g.reduce("ReduceMean", g.op("Mul", [d, d]), norm, True)
    r = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [var, g.scalar(s.epsilon, "epsilon")])])])
    y = g.op("Mul", [d, r])
    if s.scale:
        y = g.op("Mul", [y, g.const(_w(node, "gamma").reshape(shape), "gamma")])
    if s.center:
        y = g.op("Add", [y, g.const(_w(node, "beta").reshape(shape), "beta")])
    return y, mask


def _identity(g, node, x, mask):
    return x, mask


def _flatten(g, node, x, mask):
    return g.op("Flatten", [x], axis=1), None


def _reshape(g, node, x, mask):
    return g.op("Reshape", [x, g.ints([0, *node.layer.spec.target_shape])]), None


def _activation_layer(g, node, x, mask):
    return _activation(g, node.layer.spec.activation, x), mask


def _embedding(g, node, ids, mask):
    int32 = ids in g.int32
    if not int32:
        ids = g.op("Cast", [ids], to=g.onnx.TensorProto.INT64)  # float ids truncated, as Keras
    y = g.op("Gather", [g.const(_w(node, "embeddings"), "embeddings"), ids], axis=0)
    if node.layer.spec.mask_zero:
        zero = g.const(np.zeros((), np.int32 if int32 else np.int64), "pad_id")
        mask = g.op("Not", [g.op("Equal", [ids, zero])])
    return y, mask


def _union(g, masks):
    """Keras's merged mask: None if any input is unmasked, else the union."""
    if any(m is None for m in masks):
        return None
    return _fold(g, "Or", masks)


def _fold(g, op, xs):
    """xs[0] op xs[1] op ...: a binary ONNX op over several tensors."""
    out = xs[0]
    for x in xs[1:]:
        out = g.op(op, [out, x])
    return out


def _add(g, node, xs, masks):
    return g.op("Sum", xs), _union(g, masks)


def _concatenate(g, node, xs, masks):
    y = g.op("Concat", xs, axis=node.layer.spec.axis)
    if all(m is None for m in masks):
        return y, None
    rank = len(node.input_shape[0]) + 1
    if rank != 3 or node.layer.spec.axis % rank != 2:
        # masked steps would then sit inside the sequence, which sequence lengths cannot say
        raise _Unsupported(("axis",), f"layer '{node.name}' (Concatenate) joins masked sequences "
                           f"along axis {node.layer.spec.axis}: ONNX export carries masks as sequence "
                           "lengths, so only the features axis (-1) can be joined")
    return y, _union(g, masks)  # an unmasked feature never masks a step


# -- recurrent layers --------------------------------------------------------------------------------
def _onnx_weights(kind, layer, W, U, b):
    """(W, R, B) in ONNX's layout [1, gates * units, ...] and gate order, from Keras's."""
    u = layer.spec.units
    if kind == "LSTM":
        cols = np.concatenate([np.arange(k * u, (k + 1) * u) for k in _LSTM_ORDER])
        W, U = W[:, cols], U[:, cols]
        b = None if b is None else b[cols]
    G = W.shape[1]
    if b is None:
        B = None
    elif kind == "GRU" and layer.spec.reset_after:
        B = np.concatenate([b[0], b[1]])  # Keras's input and recurrent biases: ONNX's Wb and Rb
    else:
        B = np.concatenate([b, np.zeros(G, np.float32)])
    return W.T[None], U.T[None], None if B is None else B[None]


def _rnn(g, layer, weights, x_tm, lens, mask, go_backwards, zero_output, time_order):
    """One recurrent layer as an ONNX RNN/GRU/LSTM op on the time-major input x_tm.

    Returns the output batch-major as layerc's layer gives it: the last state, or the
    sequence in scan order (reversed for go_backwards), or, with time_order, reversed back
    to the input's time order (Bidirectional's backward layer).
    """
    s = layer.spec
    kind = s.type
    W, R, B = _onnx_weights(kind, layer, weights["kernel"], weights["recurrent_kernel"], weights.get("bias"))
    acts = {"LSTM": lambda: [s.recurrent_activation, s.activation, s.activation],
            "GRU": lambda: [s.recurrent_activation, s.activation],
            "SimpleRNN": lambda: [s.activation]}[kind]()
    names, alphas, betas = zip(*(_RECURRENT_ACT[a] for a in acts))
    attrs = dict(hidden_size=s.units, direction="reverse" if go_backwards else "forward",
                 activations=list(names))
    # one entry per activation that takes the parameter, in order (ONNX Runtime's reading)
    if any(a is not None for a in alphas):
        attrs["activation_alpha"] = [a for a in alphas if a is not None]
    if any(b_ is not None for b_ in betas):
        attrs["activation_beta"] = [b_ for b_ in betas if b_ is not None]
    if kind == "GRU":
        attrs["linear_before_reset"] = int(s.reset_after)
    ins = [x_tm, g.const(W, "W"), g.const(R, "R"), g.const(B, "B") if B is not None else "",
           lens or ""]
    op = {"SimpleRNN": "RNN"}.get(kind, kind)
    if not s.return_sequences:  # only the last state: ONNX Runtime skips writing Y
        Y_h = g.op(op, ins, out=["", g.name("Y_h")], **attrs)
        return g.op("Squeeze", [Y_h, g.ints([0], "axes")])
    Y, Y_h = g.op(op, ins, n_out=2, **attrs)
    y = g.transpose(g.op("Squeeze", [Y, g.ints([1], "axes")]), (1, 0, 2))  # (batch, T, units)
    if mask is not None and not go_backwards and not zero_output:
        # layerc (as Keras) carries the last state over masked steps; ONNX writes zeros
        last = g.op("Unsqueeze", [g.op("Squeeze", [Y_h, g.ints([0], "axes")]), g.ints([1], "axes")])
        y = g.op("Where", [g.op("Unsqueeze", [mask, g.ints([2], "axes")]), y, last])
    return g.reverse_time(y) if go_backwards != time_order else y


def _time_major(g, x, mask):
    x_tm = g.transpose(x, (1, 0, 2))
    lens = None
    if mask is not None:
        lens = g.reduce("ReduceSum", g.op("Cast", [mask], to=g.onnx.TensorProto.INT32), [1], False)
    return x_tm, lens


def _recurrent(g, node, x, mask):
    layer = node.layer
    x_tm, lens = _time_major(g, x, mask)
    weights = {k: _w(node, k) for k in layer.weights}
    y = _rnn(g, layer, weights, x_tm, lens, mask, layer.spec.go_backwards, False, False)
    return y, (mask if layer.spec.return_sequences else None)


def _bidirectional(g, node, x, mask):
    bi = node.layer
    x_tm, lens = _time_major(g, x, mask)
    seqs = bi.spec.layer.return_sequences
    ys = []
    for side, layer in bi._sides:
        weights = {k.split("/", 1)[1]: _w(node, k) for k in bi.weights if k.startswith(side + "/")}
        ys.append(_rnn(g, layer, weights, x_tm, lens, mask, layer.spec.go_backwards, seqs,
                       time_order=seqs and side == "backward"))
    mode = bi.spec.merge_mode
    if mode == "concat":
        y = g.op("Concat", ys, axis=-1)
    elif mode == "sum":
        y = g.op("Add", ys)
    elif mode == "ave":
        y = g.op("Mul", [g.op("Add", ys), g.scalar(0.5)])
    else:
        y = g.op("Mul", ys)
    return y, (mask if seqs else None)


# -- convolutions added later: transposed, depthwise, separable -----------------------------------
def _conv_transpose(g, node, x, mask):
    """ONNX's ConvTranspose (no pads), then Keras's crop of the full output (layerc's
    `transpose_crops`: a negative crop is zeros added), then the bias."""
    from ..core.conv_transpose import transpose_crops

    s, layer = node.layer.spec, node.layer
    k, st, d, pad, op = (v[-layer.rank:] for v in layer._geometry())
    W = _w(node, "kernel")
    W = W.transpose(3, 2, 0, 1) if layer.rank == 2 else W.transpose(2, 1, 0)  # (C, F, *k)
    crops = [transpose_crops(*args) for args in zip(k, st, d, pad, op)]
    cut = [max(0, c) for c in (*(a for a, _ in crops), *(b for _, b in crops))]
    grow = [0, 0] + [max(0, -a) for a, _ in crops] + [0, 0] + [max(0, -b) for _, b in crops]

    def conv(t):
        y = g.op("ConvTranspose", [t, g.const(W, "kernel")], kernel_shape=list(k), strides=list(st),
                 dilations=list(d), pads=cut)
        return g.op("Pad", [y, g.ints(grow, "pads")]) if any(grow) else y

    y = _channels_first(g, x, layer.rank, conv)
    if s.use_bias:
        y = g.op("Add", [y, g.const(_w(node, "bias"), "bias")])
    return _activation(g, s.activation, y), None


def _depthwise_kernel(W):
    """Keras's (kh, kw, C, m) depthwise kernel as a grouped Conv's (C * m, 1, kh, kw)."""
    kh, kw, c, m = W.shape
    return W.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)


def _depthwise(g, node, x, mask):
    """DepthwiseConv2D as a Conv with one group per channel; SeparableConv2D then its
    pointwise 1x1 Conv."""
    s = node.layer.spec
    sizes, k, strides, dil, padding = _spatial(node)
    separable = s.type == "SeparableConv2D"
    W = _w(node, "depthwise_kernel" if separable else "kernel")
    bias = [g.const(_w(node, "bias"), "bias")] if s.use_bias else []
    attrs = dict(kernel_shape=list(k), strides=list(strides), dilations=list(dil), group=W.shape[2],
                 **_pads(g, sizes, k, strides, dil, padding))

    def conv(t):
        y = g.op("Conv", [t, g.const(_depthwise_kernel(W), "depthwise_kernel"), *([] if separable else bias)],
                 **attrs)
        if separable:
            P = _w(node, "pointwise_kernel").transpose(3, 2, 0, 1)
            y = g.op("Conv", [y, g.const(P, "pointwise_kernel"), *bias], kernel_shape=[1, 1])
        return y

    return _activation(g, s.activation, _channels_first(g, x, 2, conv)), None


# -- resampling ---------------------------------------------------------------------------------
def _upsampling(g, node, x, mask):
    """Resize on the channels-first tensor: nearest repeats each value (asymmetric, floor);
    bilinear is Keras's half-pixel interpolation."""
    from ..spec.layers import pair

    s = node.layer.spec
    rank = 2 if s.type == "UpSampling2D" else 1
    size = pair(s.size) if rank == 2 else (s.size,)
    scales = g.const(np.asarray([1, 1, *size], np.float32), "scales")
    if getattr(s, "interpolation", "nearest") == "bilinear":
        attrs = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    else:
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return _channels_first(g, x, rank, lambda t: g.op("Resize", [t, "", scales], **attrs)), None


def _edges(node):
    from ..core.resampling import edges

    s = node.layer.spec
    rank = node.layer.rank
    return edges(s.padding if s.type.startswith("ZeroPadding") else s.cropping, rank)


def _zero_padding(g, node, x, mask):
    e = _edges(node)
    pads = [0, *(a for a, _ in e), 0, 0, *(b for _, b in e), 0]
    return g.op("Pad", [x, g.ints(pads, "pads")]), None


def _cropping(g, node, x, mask):
    e = _edges(node)
    axes = list(range(1, len(e) + 1))
    return g.op("Slice", [x, g.ints([a for a, _ in e], "starts"), g.ints([-b if b else 2 ** 62 for _, b in e], "ends"),
                          g.ints(axes, "axes")]), None


def _rescaling(g, node, x, mask):
    s = node.layer.spec
    y = g.op("Mul", [x, g.const(np.asarray(s.scale, np.float32), "scale")])
    return g.op("Add", [y, g.const(np.asarray(s.offset, np.float32), "offset")]), mask


def _repeat_vector(g, node, x, mask):
    y = g.op("Unsqueeze", [x, g.ints([1], "axes")])
    return g.op("Tile", [y, g.ints([1, node.layer.spec.n, 1], "repeats")]), None


def _permute(g, node, x, mask):
    return g.transpose(x, (0, *node.layer.spec.dims)), None


def _merge(op):
    def merge(g, node, xs, masks):
        if any(m is not None for m in masks):
            raise _Unsupported(("type",), f"layer '{node.name}' ({node.layer.spec.type}) merges masked "
                               "inputs: ONNX export carries masks as sequence lengths, not into merges "
                               "other than Add and Concatenate")
        if op == "Mul":  # Mul takes two inputs; Mean, Max and Min any number
            y = xs[0]
            for x in xs[1:]:
                y = g.op("Mul", [y, x])
            return y, None
        return g.op(op, xs), None

    return merge


def _position(g, node, x, mask):
    """x + embeddings[:T], T the input's steps (axis -2)."""
    E = g.const(_w(node, "embeddings"), "embeddings")
    steps = g.op("Gather", [g.op("Shape", [x]), g.ints([len(node.input_shape) - 1], "axis")])
    rows = g.op("Slice", [E, g.ints([0], "start"), steps, g.ints([0], "axis")])
    return g.op("Add", [x, rows]), mask


def _time_distributed(g, node, x, mask):
    """The wrapped layer on (batch * steps, ...): Reshape, the layer, Reshape back."""
    from types import SimpleNamespace

    td, inner = node.layer, node.layer.inner
    shape_in = tuple(node.input_shape[1:])
    shape_out = tuple(node.output_shape[1:])
    if None in shape_in or None in shape_out:
        raise _Unsupported(("layer",), f"layer '{node.name}' (TimeDistributed) wraps inputs of unknown "
                           f"size {shape_in}: ONNX export folds the steps into the batch with a fixed shape")
    folded = g.op("Reshape", [x, g.ints([-1, *shape_in])])
    inner.weights = td.weights
    fake = SimpleNamespace(layer=inner, name=node.name, index=node.index, inputs=node.inputs,
                           input_shape=shape_in, output_shape=shape_out)
    try:
        y, _ = _LAYERS[inner.spec.type](g, fake, folded, None)
    except _Unsupported as e:
        raise _Unsupported(("layer", *e.args[0]), e.args[1]) from None
    lead = g.op("Slice", [g.op("Shape", [x]), g.ints([0], "start"), g.ints([2], "end")])
    return g.op("Reshape", [y, g.op("Concat", [lead, g.ints(list(shape_out), "shape")], axis=0)]), mask


def _attention(g, node, xs, masks):
    """MultiHeadAttention: the projections (MatMul on the kernels reshaped to (D, heads *
    dim)), scaled scores per head, layerc's masked softmax (masked scores -1e9, masked
    probabilities 0, a query step with nothing to attend to gets zeros), the output
    projection. The mask combines the query's, value's and key's masks and the causal one."""
    s, W = node.layer.spec, node.layer.weights
    H, dk = s.num_heads, s.key_dim
    dv = s.value_dim or dk
    xq = xs[0]
    xv = xs[1] if len(xs) > 1 else xq
    xk = xs[2] if len(xs) > 2 else xv

    def project(x, name, dim):
        kernel = np.asarray(W[f"{name}/kernel"], np.float32)
        y = g.op("MatMul", [x, g.const(kernel.reshape(kernel.shape[0], -1), f"{name}_kernel")])
        if s.use_bias:
            y = g.op("Add", [y, g.const(np.asarray(W[f"{name}/bias"], np.float32).reshape(-1), f"{name}_bias")])
        return g.transpose(g.op("Reshape", [y, g.ints([0, 0, H, dim])]), (0, 2, 1, 3))  # (B, H, T, dim)

    q = g.op("Mul", [project(xq, "query", dk), g.scalar(1.0 / np.sqrt(dk))])
    k, v = project(xk, "key", dk), project(xv, "value", dv)
    scores = g.op("MatMul", [q, g.transpose(k, (0, 1, 3, 2))])  # (B, H, T, S)
    allowed = _attention_mask(g, node, xq, xv, masks)
    if allowed is None:
        probs = g.op("Softmax", [scores], axis=-1)
    else:
        scores = g.op("Where", [allowed, scores, g.scalar(-1e9)])
        e = g.op("Exp", [g.op("Sub", [scores, g.reduce("ReduceMax", scores, [-1], True)])])
        e = g.op("Mul", [e, g.op("Cast", [allowed], to=g.onnx.TensorProto.FLOAT)])
        den = g.op("Max", [g.reduce("ReduceSum", e, [-1], True), g.scalar(1e-30)])
        probs = g.op("Div", [e, den])
    o = g.transpose(g.op("MatMul", [probs, v]), (0, 2, 1, 3))  # (B, T, H, dv)
    o = g.op("Reshape", [o, g.ints([0, 0, H * dv])])
    Wo = np.asarray(W["attention_output/kernel"], np.float32)
    out_shape = list(Wo.shape[2:])
    y = g.op("MatMul", [o, g.const(Wo.reshape(H * dv, -1), "output_kernel")])
    if s.use_bias:
        y = g.op("Add", [y, g.const(np.asarray(W["attention_output/bias"], np.float32).reshape(-1), "output_bias")])
    if len(out_shape) > 1:
        y = g.op("Reshape", [y, g.ints([0, 0, *out_shape])])
    return y, masks[0]


def _attention_mask(g, node, xq, xv, masks):
    """The boolean (B or 1, 1, T, S) attention mask, or None."""
    masks = list(masks) + [None] * 3
    n = len(node.inputs)
    q_mask, v_mask = masks[0], masks[1] if n > 1 else masks[0]
    k_mask = masks[2] if n > 2 else None
    parts = []
    if q_mask is not None:
        parts.append(g.op("Unsqueeze", [q_mask, g.ints([1, 3], "axes")]))
    for m in (v_mask, k_mask):
        if m is not None:
            parts.append(g.op("Unsqueeze", [m, g.ints([1, 2], "axes")]))
    if node.layer.spec.use_causal_mask:
        T, S = node.input_shape[0][0], (node.input_shape[1] if n > 1 else node.input_shape[0])[0]
        if T is None or S is None:
            raise _Unsupported(("use_causal_mask",), f"layer '{node.name}' (MultiHeadAttention) has "
                               "steps of unknown size: ONNX export writes the causal mask as a constant")
        parts.append(g.const(np.tril(np.ones((T, S), bool))[None, None], "causal"))
    if not parts:
        return None
    return _fold(g, "And", parts)


# -- augmentation: the identity at inference (as in Keras), RandomCrop its centred window --------
def _random_crop(g, node, x, mask):
    """The largest centred window of the target aspect ratio, resized bilinearly (half-pixel,
    no antialias) to height x width."""
    from ..core.augmentation import centre_window

    s = node.layer.spec
    H, W = node.input_shape[:2]
    top, left, rows, cols = centre_window(H, W, s.height, s.width)
    y = g.op("Slice", [x, g.ints([top, left], "starts"), g.ints([top + rows, left + cols], "ends"),
                       g.ints([1, 2], "axes")])
    if (rows, cols) == (s.height, s.width):
        return y, None

    def resize(t):
        lead = g.op("Slice", [g.op("Shape", [t]), g.ints([0], "start"), g.ints([2], "end")])
        sizes = g.op("Concat", [lead, g.ints([s.height, s.width], "size")], axis=0)
        return g.op("Resize", [t, "", "", sizes], mode="linear", coordinate_transformation_mode="half_pixel")

    return _channels_first(g, y, 2, resize), None


_AUGMENTATION = {"RandomFlip": _identity, "RandomRotation": _identity, "RandomZoom": _identity,
                 "RandomTranslation": _identity, "RandomContrast": _identity, "RandomBrightness": _identity,
                 "RandomCrop": _random_crop}

_LAYERS = {
    "Dense": _dense, "Conv1D": _conv, "Conv2D": _conv,
    "MaxPooling1D": _pool, "MaxPooling2D": _pool, "AveragePooling2D": _pool,
    "GlobalAveragePooling1D": _global_pool, "GlobalAveragePooling2D": _global_pool,
    "GlobalMaxPooling2D": _global_pool,
    "SimpleRNN": _recurrent, "LSTM": _recurrent, "GRU": _recurrent, "Bidirectional": _bidirectional,
    "Dropout": _identity, "BatchNormalization": _batch_norm, "LayerNormalization": _layer_norm,
    "Embedding": _embedding, "Flatten": _flatten, "Reshape": _reshape, "Activation": _activation_layer,
    "Add": _add, "Concatenate": _concatenate,
    "Conv1DTranspose": _conv_transpose, "Conv2DTranspose": _conv_transpose, "DepthwiseConv2D": _depthwise,
    "SeparableConv2D": _depthwise, "UpSampling1D": _upsampling, "UpSampling2D": _upsampling,
    "ZeroPadding1D": _zero_padding, "ZeroPadding2D": _zero_padding, "Cropping1D": _cropping,
    "Cropping2D": _cropping, "AveragePooling1D": _pool, "GlobalMaxPooling1D": _global_pool,
    "Multiply": _merge("Mul"), "Subtract": _merge("Sub"), "Average": _merge("Mean"), "Maximum": _merge("Max"),
    "Minimum": _merge("Min"), "Rescaling": _rescaling, "RepeatVector": _repeat_vector, "Permute": _permute,
    "GaussianNoise": _identity, "SpatialDropout1D": _identity, "SpatialDropout2D": _identity,
    "PositionEmbedding": _position, "TimeDistributed": _time_distributed, "MultiHeadAttention": _attention,
    **_AUGMENTATION,
}

from .onnx_keras_layers import LAYERS as _KERAS_LAYERS  # noqa: E402  the layers keras.applications needs

_LAYERS.update(_KERAS_LAYERS)
