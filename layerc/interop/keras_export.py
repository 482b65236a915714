"""A layerc model as a Keras 3 `.keras` file: config.json, metadata.json, model.weights.h5.

The zip is written with zipfile and the weights with h5py (never Keras itself), in the
layout Keras's `saving_lib` writes, so `keras.saving.load_model` opens it.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

from .keras_config import (
    LOSSES, METRICS, OPTIMIZERS, RECURRENT, KerasError, functional_order, h5_groups, initializer_config,
    keras_object, regularizer_config, sub_groups, weight_paths,
)

# The layer types the exporter writes (a layer added to layerc must be added here; a test
# holds the two lists together).
EXPORTS = frozenset({
    "Dense", "Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "SimpleRNN", "LSTM",
    "GRU", "Bidirectional", "Dropout", "BatchNormalization", "LayerNormalization", "Embedding",
    "Flatten", "Reshape", "Activation", "Add", "Concatenate",
    "Conv1DTranspose", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D", "UpSampling1D", "UpSampling2D",
    "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "AveragePooling1D", "GlobalMaxPooling1D",
    "Multiply", "Subtract", "Average", "Maximum", "Minimum", "MultiHeadAttention", "TimeDistributed",
    "Rescaling", "RepeatVector", "Permute", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D",
    "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "LayerScale", "Normalization",
})
# Layer types whose Keras class is not in keras.layers: (module, registered name)
KERAS_MODULES = {"LayerScale": ("keras.src.applications.convnext", "LayerScale")}
# The layer types Keras has no class for, with the reason the error gives.
UNEXPORTABLE = {"PositionEmbedding": "Keras's core has no PositionEmbedding (keras_hub's is another package)"}
KERAS_VERSION = "3.5.0"  # the oldest Keras 3 whose format this is ([reference] extra: keras>=3.5)


def save_keras(model, path) -> None:
    """Write a layerc Model (its current weights) as a `.keras` file, atomically.

    Args:
        model: a `layerc.build(spec)` model; unbuilt models get their seeded initial weights.
        path: the file to write; must end in `.keras` (Keras opens nothing else).
    Raises:
        KerasError: naming every layer that cannot be exported; nothing is written.
    """
    from ..runs import atomic_write

    path = Path(path)
    if path.suffix != ".keras":
        raise KerasError(f"{path}: a Keras model file must end in .keras")
    config, groups = model_config(model)
    weights = weights_h5(model, groups, config["config"]["name"])
    from .. import __version__

    meta = {"keras_version": KERAS_VERSION, "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S"),
            "layerc_version": __version__}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", json.dumps(meta))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
    atomic_write(path, buf.getvalue())


def model_config(model) -> tuple[dict, list[tuple]]:
    """(config.json's content, [(h5 group, layer name, node or None for an input)] in
    Keras's order)."""
    spec, graph = model.spec, model.graph
    bad = [f"{n.layer.spec.type} '{n.name}' ({_where(spec, n.index)})"
           + (f": {UNEXPORTABLE[t]}" if t in UNEXPORTABLE else "")
           for n in graph.nodes if (t := _unexportable(n.layer.spec)) is not None]
    if bad:
        raise KerasError(f"{len(bad)} layer{'s' if len(bad) > 1 else ''} cannot be exported to Keras: "
                         + ", ".join(bad))
    name = model.name
    inputs = {k: graph.inputs[k] for k in model.input_names}
    by_name = {n.name: n for n in graph.nodes}
    attention = any(n.layer.spec.type == "MultiHeadAttention" for n in graph.nodes)  # call arguments
    if (graph.sequential and len(graph.outputs) == 1 and graph.outputs[0] == graph.nodes[-1].name
            and not attention):
        (in_name, in_spec), = inputs.items()
        batch_shape = [None, *in_spec.shape]
        layers = [_input_layer(in_name, in_spec, spec.dtype, functional=False)]
        layers += [_layer(n, spec.dtype) for n in graph.nodes]
        config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
                  "config": {"name": name, "trainable": True, "dtype": spec.dtype, "layers": layers,
                             "build_input_shape": batch_shape},
                  "build_config": {"input_shape": batch_shape}}
        tracked = [(n.layer.spec.type, n.name, n) for n in graph.nodes]
    else:
        order = functional_order({n.name: n.inputs for n in graph.nodes}, list(inputs), graph.outputs)
        dtypes = {k: _input_dtype(v, spec.dtype) for k, v in inputs.items()}
        dtypes.update({n.name: spec.dtype for n in graph.nodes})
        layers, tracked = [], []
        for lname in order:
            if lname in inputs:
                layers.append(_input_layer(lname, inputs[lname], spec.dtype, functional=True))
                tracked.append(("InputLayer", lname, None))
                continue
            node = by_name[lname]
            entry = _layer(node, spec.dtype)
            tensors = [_tensor(graph.shapes[s], dtypes[s], s) for s in node.inputs]
            entry["name"] = lname
            entry["inbound_nodes"] = [_call(node, tensors)]
            layers.append(entry)
            tracked.append((node.layer.spec.type, lname, node))

        def ends(names):
            refs = [[n, 0, 0] for n in names]
            return refs[0] if len(refs) == 1 else refs

        config = {"module": "keras.src.models.functional", "class_name": "Functional",
                  "registered_name": "Functional",
                  "config": {"name": name, "trainable": True, "layers": layers,
                             "input_layers": ends(list(inputs)), "output_layers": ends(graph.outputs)},
                  "build_config": {"input_shape": None}}
    if spec.train is not None and not isinstance(spec.train.loss, dict) and not isinstance(spec.train.metrics, dict):
        config["compile_config"] = compile_config(spec.train)  # (mappings by output: left out)
    groups = h5_groups([t for t, _, _ in tracked])
    return config, [(g, lname, node) for g, (_, lname, node) in zip(groups, tracked)]


def _unexportable(spec):
    """The type of the layer (or wrapped layer) that cannot be exported, or None."""
    if spec.type not in EXPORTS:
        return spec.type
    return _unexportable(spec.layer) if spec.type == "TimeDistributed" else None


def _call(node, tensors) -> dict:
    """A functional layer's call: a merge takes the list, MultiHeadAttention (query, value[,
    key]) with use_causal_mask, the others their one tensor."""
    spec = node.layer.spec
    if spec.type == "MultiHeadAttention":
        args = tensors if len(tensors) > 1 else tensors * 2
        return {"args": args, "kwargs": {"use_causal_mask": True} if spec.use_causal_mask else {}}
    return {"args": [tensors if node.layer.multi_input else tensors[0]], "kwargs": {}}


def _where(spec, index: int) -> str:
    """file:line:col of a layer in its spec (layers[i] for a spec built in code)."""
    if spec._source is None:
        return f"layers[{index}]"
    d = spec._source.diagnostic(("layers", index, "type"), "", key=True)
    return d.file if d.line is None else f"{d.file}:{d.line}:{d.col}"


def _input_dtype(input_spec, dtype: str) -> str:
    """layerc casts float inputs to the model's dtype; Keras's InputLayer must say it."""
    return dtype if input_spec.dtype.startswith("float") else input_spec.dtype


def _input_layer(name, spec, dtype, functional):
    entry = keras_object("keras.layers", "InputLayer",
                         {"batch_shape": [None, *spec.shape], "dtype": _input_dtype(spec, dtype), "sparse": False,
                          "name": name})
    if functional:
        entry.update(name=name, inbound_nodes=[])
    return entry


def _tensor(shape, dtype, source):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, *shape], "dtype": dtype, "keras_history": [source, 0, 0]}}


def _layer(node, dtype) -> dict:
    entry = keras_object("keras.layers", node.layer.spec.type, layer_args(node.layer.spec, node.name, dtype))
    if node.layer.spec.type in KERAS_MODULES:
        entry["module"], entry["registered_name"] = KERAS_MODULES[node.layer.spec.type]
    noise = getattr(node.layer.spec, "noise_shape", None)
    if noise is not None and len(noise) == len(node.input_shape) + 1:
        entry["config"]["noise_shape"] = list(noise)  # the spec's has the batch axis already
    shape = node.input_shape
    batch = [[None, *s] for s in shape] if node.layer.multi_input else [None, *shape]
    if node.layer.spec.type == "MultiHeadAttention":
        batch = batch if len(batch) > 1 else batch * 2
        roles = ("query_shape", "value_shape", "key_shape")
        entry["build_config"] = {"shapes_dict": dict(zip(roles, batch))}
    else:
        entry["build_config"] = {"input_shape": batch}
    return entry


def layer_args(spec, name, dtype) -> dict:
    """A layer spec as its Keras class's constructor arguments (Keras's names throughout)."""
    args = {"name": name, "trainable": spec.trainable, "dtype": dtype}
    if spec.type.startswith("SpatialDropout"):
        del args["trainable"]  # Keras's SpatialDropout takes no trainable (it has no weights)
    for key in type(spec).model_fields:
        if key in ("type", "name", "inputs", "trainable", "use_causal_mask"):  # the last a call argument
            continue
        value = getattr(spec, key)
        if key.endswith("_initializer"):
            value = initializer_config(value)
        elif key.endswith("_regularizer"):
            value = regularizer_config(value)
        elif key == "noise_shape" and value is not None:
            value = [None, *value]  # Keras's noise_shape has the batch axis
        elif key == "layer" and spec.type == "Bidirectional":  # both directions, as Keras writes
            # them (it cannot rebuild the backward layer of a go_backwards layer by itself)
            kind = _snake(value.type)
            args["backward_layer"] = keras_object("keras.layers", value.type, layer_args(
                value.model_copy(update={"go_backwards": not value.go_backwards}), f"backward_{kind}", dtype))
            value = keras_object("keras.layers", value.type, layer_args(value, f"forward_{kind}", dtype))
        elif key == "layer":
            value = keras_object("keras.layers", value.type,
                                 layer_args(value, value.name or _snake(value.type), dtype))
        elif isinstance(value, tuple):
            value = list(value)
        args[key] = value
    if spec.type in RECURRENT:
        args["zero_output_for_mask"] = False
    return args


def _snake(type_name):
    from ..spec.names import snake_case

    return snake_case(type_name)


def compile_config(train) -> dict:
    """The spec's optimizer, loss and metrics as Keras's compile arguments (the metrics
    Keras names by a string; the others are left out)."""
    opt = train.optimizer
    opt_args = {k: getattr(opt, k) for k in type(opt).model_fields if k != "type"}
    lr = opt_args["learning_rate"]
    if not isinstance(lr, float):
        opt_args["learning_rate"] = getattr(lr, "initial_learning_rate", None) or lr.values[0]
    opt_args = {k: v for k, v in opt_args.items() if v is not None}
    loss = train.loss
    loss_args = {k: getattr(loss, k) for k in type(loss).model_fields if k != "type"}
    return {
        "optimizer": {"module": "keras.optimizers", "class_name": OPTIMIZERS[opt.type], "config": opt_args,
                      "registered_name": None},
        "loss": keras_object("keras.losses", LOSSES[loss.type], loss_args) if loss_args else loss.type,
        "metrics": [METRICS[m.type] for m in train.metrics if m.type in METRICS] or None,
        "loss_weights": None, "weighted_metrics": None, "run_eagerly": False,
        "steps_per_execution": 1, "jit_compile": False,
    }


def weights_h5(model, groups, model_name: str) -> bytes:
    """model.weights.h5 in Keras's layout: `layers/<group>/vars/<i>` (recurrent layers under
    `cell/`, Bidirectional under `forward_layer/` and `backward_layer/`)."""
    import h5py

    model.build()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers")
        for group, lname, node in groups:
            base = f"layers/{group}"
            for sub, owner in [("vars", lname)] if node is None else sub_groups(node.layer.spec, lname):
                f.require_group(f"{base}/{sub}").attrs["name"] = owner
            if node is None:
                continue
            names = list(node.layer.weights)
            for key, sub in zip(names, weight_paths(node.layer.spec, names)):
                value = node.layer.weights[key]
                if node.layer.spec.type == "Normalization" and key == "count":  # Keras's is an int32
                    value = value.astype("int32")
                f[f"{base}/{sub}"] = value
        f.create_group("vars").attrs["name"] = model_name
    return buf.getvalue()
