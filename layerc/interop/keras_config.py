"""What a layerc spec field is in a Keras 3 config, both ways: initializers, regularizers,
window sizes, the Keras-only keys and the values layerc's behaviour equals, and where each
layer's weights sit in `model.weights.h5`. Shared by keras_export and keras_import; no
numpy, no h5py, never keras itself.
"""
from __future__ import annotations

import math
import struct

from ..spec.names import snake_case


class KerasError(ValueError):
    """A Keras file or model that layerc cannot read or write."""


# layerc initializer name -> Keras 3 class (with its default config, which is all layerc has)
INITIALIZERS = {
    "zeros": "Zeros", "ones": "Ones", "glorot_uniform": "GlorotUniform", "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform", "he_normal": "HeNormal", "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal", "orthogonal": "Orthogonal", "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform", "uniform": "RandomUniform", "truncated_normal": "TruncatedNormal",
}
RECURRENT = ("SimpleRNN", "LSTM", "GRU")
WINDOW_FIELDS = ("kernel_size", "strides", "dilation_rate", "pool_size", "output_padding", "size")

# Keras-only config keys: the value at which Keras computes what layerc computes. A key
# whose value is in the set is dropped on import; another value makes the layer unsupported.
_ANY = object()
KERAS_ONLY = {
    "data_format": {"channels_last"}, "groups": {1}, "return_state": {False}, "stateful": {False},
    "unroll": _ANY, "use_cudnn": _ANY, "synchronized": _ANY, "renorm": {False}, "renorm_clipping": {None},
    "renorm_momentum": _ANY, "rms_scaling": {False}, "zero_output_for_mask": {False},
    "sparse": {False}, "ragged": {False}, "optional": {False}, "implementation": _ANY, "time_major": {False},
}


def allowed(key: str, value) -> bool:
    """Whether a Keras-only key's value is one layerc's behaviour equals."""
    if key.endswith(("_constraint", "_regularizer")) or key in ("quantization_config", "lora_rank", "lora_alpha"):
        return value is None
    ok = KERAS_ONLY.get(key)
    if ok is None:
        return value is None or value is False  # a newer Keras's key, at its off value
    return ok is _ANY or value in ok


def keras_object(module: str, class_name: str, config: dict) -> dict:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def initializer_config(name: str) -> dict:
    return keras_object("keras.initializers", INITIALIZERS[name], {})


def regularizer_config(value) -> dict | None:
    """A spec regularizer ('l1', 'l2', 'l1_l2' or {l1, l2}) as a Keras regularizer object."""
    from ..core.base import regularizer_factors

    factors = regularizer_factors(value)
    if factors is None:
        return None
    l1, l2 = factors
    if l2 == 0.0:
        return keras_object("keras.regularizers", "L1", {"l1": l1})
    if l1 == 0.0:
        return keras_object("keras.regularizers", "L2", {"l2": l2})
    return keras_object("keras.regularizers", "L1L2", {"l1": l1, "l2": l2})


def short_float(x: float) -> float:
    """A float32 value as the decimal it was written as (0.0010000000474974513 -> 0.001): the
    shortest decimal with the same float32. Any other float is kept whole (1/255 stays
    0.00392156862745098, not 0.003921569, which would change Keras's outputs)."""
    x = float(x)
    if not math.isfinite(x) or _float32(x) != x:
        return x
    return next(float(f"{x:.{digits}g}") for digits in range(1, 10) if _float32(float(f"{x:.{digits}g}")) == x)


def _float32(x: float) -> float:
    """x rounded to the nearest float32 (inf when out of its range)."""
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return math.inf


def compact(value):
    """[3, 3] -> 3: a window size in its shortest spec form."""
    if isinstance(value, (list, tuple)) and value and all(v == value[0] for v in value):
        return value[0]
    return list(value) if isinstance(value, tuple) else value


def is_builtin(obj: dict) -> bool:
    """A serialised Keras object from Keras itself (no custom or registered user class)."""
    module = obj.get("module")
    registered = obj.get("registered_name")
    return (isinstance(module, str) and (module == "keras" or module.startswith("keras."))
            and (registered is None or registered == obj.get("class_name")))


def h5_groups(class_names: list[str]) -> list[str]:
    """The `layers/<group>` of each tracked layer, in order: Keras names them by class
    (`dense`, `dense_1`, ...), whatever the layers' own names."""
    used: dict[str, int] = {}
    groups = []
    for cls in class_names:
        base = snake_case(cls)
        if base in used:
            used[base] += 1
            groups.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            groups.append(base)
    return groups


# MultiHeadAttention's EinsumDense sub-layers: layerc weight prefix -> (h5 group, its name)
ATTENTION_DENSE = {"query": ("query_dense", "query"), "key": ("key_dense", "key"),
                   "value": ("value_dense", "value"), "attention_output": ("output_dense", "attention_output")}
_ATTENTION_EMPTY = {"_softmax": "softmax", "_dropout_layer": "dropout"}


def weight_paths(spec, weight_names: list[str]) -> list[str]:
    """Each layerc weight's dataset path inside its layer's group, in Keras's order (`spec`
    the layer's spec: a wrapper's paths are its layer's under `layer/`)."""
    type_name = spec.type
    if type_name in RECURRENT:
        return [f"cell/vars/{i}" for i in range(len(weight_names))]
    if type_name == "TimeDistributed":
        return [f"layer/{p}" for p in weight_paths(spec.layer, weight_names)]
    if type_name in ("Bidirectional", "MultiHeadAttention"):
        paths, count = [], {}
        for name in weight_names:
            side = name.split("/", 1)[0]
            count[side] = count.get(side, -1) + 1
            group = ATTENTION_DENSE[side][0] if type_name == "MultiHeadAttention" else f"{side}_layer/cell"
            paths.append(f"{group}/vars/{count[side]}")
        return paths
    return [f"vars/{i}" for i in range(len(weight_names))]


def sub_groups(spec, name: str) -> list[tuple[str, str]]:
    """The groups Keras writes for a layer named `name`, with the name each `vars` group
    carries (its owner's: the layer, a cell, a sub-layer)."""
    type_name = spec.type
    if type_name in RECURRENT:
        return [("vars", name), ("cell/vars", f"{snake_case(type_name)}_cell")]
    if type_name == "Bidirectional":
        kind = snake_case(spec.layer.type)
        return [("vars", name)] + [(f"{s}_layer/{g}", f"{s}_{kind}" if g == "vars" else f"{kind}_cell")
                                   for s in ("forward", "backward") for g in ("vars", "cell/vars")]
    if type_name == "TimeDistributed":
        inner = spec.layer.name or snake_case(spec.layer.type)
        return [("vars", name)] + [(f"layer/{g}", n) for g, n in sub_groups(spec.layer, inner)]
    if type_name == "MultiHeadAttention":
        return [("vars", name)] + [(f"{g}/vars", n) for g, n in
                                   [*ATTENTION_DENSE.values(), *_ATTENTION_EMPTY.items()]]
    return [("vars", name)]


# -- training: the spec's train section <-> Keras's compile_config -------------------
OPTIMIZERS = {"sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adam": "Adam", "adamw": "AdamW"}
LOSSES = {
    "categorical_crossentropy": "CategoricalCrossentropy",
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy", "mean_squared_error": "MeanSquaredError",
    "mean_absolute_error": "MeanAbsoluteError", "huber": "Huber",
}
METRICS = {  # layerc metric -> the string Keras's compile takes
    "accuracy": "accuracy", "binary_accuracy": "binary_accuracy", "categorical_accuracy": "categorical_accuracy",
    "sparse_categorical_accuracy": "sparse_categorical_accuracy", "mae": "mae", "mse": "mse",
}


def functional_order(layers: dict[str, list[str]], inputs: list[str], outputs: list[str]) -> list[str]:
    """The order Keras 3 gives a functional model's layers (`model.layers`, and so the h5
    groups): by depth from the outputs, deepest first, ties in depth-first discovery order
    (keras.src.ops.function.map_graph). `layers` maps each layer to its inputs' names."""
    index: dict[str, int] = {}
    post: list[str] = []
    done: set[str] = set()

    for out in outputs:  # depth first, iteratively (a spec may have 10,000 layers)
        stack = [(out, None)]
        while stack:
            name, srcs = stack[-1]
            if srcs is None:
                if name in done:
                    stack.pop()
                    continue
                index.setdefault(name, len(index))
                srcs = iter(layers.get(name, ()))
                stack[-1] = (name, srcs)
            nxt = next(srcs, None)
            if nxt is None:
                stack.pop()
                if name not in done:
                    done.add(name)
                    post.append(name)
            elif nxt not in done:
                stack.append((nxt, None))
    depth: dict[str, int] = {}
    for name in reversed(post):
        d = depth.setdefault(name, 0)
        for src in layers.get(name, ()):
            depth[src] = max(d + 1, depth.get(src, 0))
    for name in inputs:
        if name not in depth:
            depth[name], index[name] = 0, -1
    return sorted(depth, key=lambda n: (-depth[n], index[n]))
