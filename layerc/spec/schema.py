"""The spec language's JSON Schema, generated from the pydantic models.

The models validate normalised values (`{type: Dense, units: 64}`, `{type: adam}`); the
schema is rewritten so that editors accept the forms people write: `- Dense: {units: 64}`,
a bare `- Flatten`, `optimizer: adam`, `{sgd: {momentum: 0.9}}`, `loss: mse`, and the
`type:` form, with every property described.

What a JSON Schema cannot say, and only `layerc validate` checks: the graph (unknown or
cyclic `inputs`, duplicate layer names, `outputs` naming no layer), shapes (a layer that
does not fit its input), the model-level rules written as validators (exactly one of
`input`/`inputs`, `strides` with `dilation_rate`, `clipnorm` with `clipvalue`, a source's
`path` or `x`/`y`, step_decay's lengths, `input_shape` only on the first layer), names in
any letter case (`optimizer: Adam`), the layer count limit and YAML-level problems
(duplicate keys, tags, alias bombs, the file size limit).
"""
from __future__ import annotations

import copy

from pydantic import TypeAdapter

from .document import full_spec
from .layers import LAYER_TYPES, any_layer
from .train import LOSS_ALIASES, METRIC_ALIASES

SCHEMA_ID = "https://layerc.dev/schema/v1.json"
ALIASES = {**LOSS_ALIASES, **METRIC_ALIASES}

DESCRIPTIONS = {
    "layerc": "format version of the spec language", "name": "a name (letters, digits, _ . -)",
    "description": "free text about the spec", "seed": "seed of every random choice (weights, shuffling, dropout)",
    "dtype": "floating-point type of the weights and activations", "input": "the model's single input",
    "inputs": "the layer's input(s): layer or model input names (default: the previous layer)",
    "layers": "the layers, in order: a list is a Sequential model, `inputs` make a graph",
    "outputs": "the output layer name(s) (default: the last layer)", "data": "where the data comes from",
    "train": "how to train: Keras's compile and fit arguments", "shape": "shape without the batch axis",
    "input_shape": "Keras's input shape on the first layer, instead of `input:`",
    "type": "which kind this is", "layer": "the wrapped recurrent layer (LSTM, GRU or SimpleRNN)",
    "units": "number of output units", "filters": "number of output channels",
    "kernel_size": "window size (an integer or a list)", "strides": "step of the window",
    "padding": "`valid` (no padding) or `same` (output as large as the input over the strides)",
    "dilation_rate": "spacing between kernel taps", "pool_size": "pooling window size",
    "activation": "activation function", "recurrent_activation": "activation of the gates",
    "use_bias": "add a bias vector", "keepdims": "keep the pooled axes with size 1",
    "kernel_initializer": "initializer of the kernel", "bias_initializer": "initializer of the bias",
    "recurrent_initializer": "initializer of the recurrent kernel",
    "kernel_regularizer": "penalty on the kernel", "bias_regularizer": "penalty on the bias",
    "recurrent_regularizer": "penalty on the recurrent kernel", "l1": "L1 factor", "l2": "L2 factor",
    "dropout": "dropout rate of the inputs", "recurrent_dropout": "dropout rate of the recurrent state",
    "return_sequences": "return every time step, not only the last",
    "go_backwards": "read the sequence backwards", "unit_forget_bias": "start the forget gate's bias at 1",
    "reset_after": "apply the reset gate after the matrix product (Keras 3 / CuDNN style)",
    "merge_mode": "how the two directions are combined", "rate": "fraction of units dropped",
    "noise_shape": "shape of the dropout mask, without the batch axis, or with it first as Keras "
                   "writes it (1 there: one mask for the whole batch)",
    "axis": "axis (or axes) to work along", "momentum": "momentum factor", "epsilon": "small constant for stability",
    "center": "learn a shift (beta)", "scale": "learn a scale (gamma)",
    "input_dim": "vocabulary size", "output_dim": "size of each embedding vector",
    "mask_zero": "treat id 0 as padding", "target_shape": "new shape without the batch axis (one -1 allowed)",
    "optimizer": "the optimizer (default rmsprop)", "loss": "the loss function", "metrics": "metrics to report",
    "batch_size": "samples per batch", "epochs": "passes over the training data",
    "shuffle": "shuffle (seeded) before each epoch / before splitting", "callbacks": "callbacks during fit",
    "learning_rate": "a constant or a schedule", "clipnorm": "clip each gradient to this norm",
    "clipvalue": "clip each gradient element to this value", "monitor": "the logged value watched",
    "patience": "epochs without improvement before acting", "min_delta": "smallest change that counts",
    "mode": "whether lower or higher is better (auto: from the monitor's name)",
}


def json_schema() -> dict:
    """The JSON Schema (Draft 2020-12) of a spec file, accepting every written form."""
    schema = full_spec().model_json_schema()
    defs = schema["$defs"]
    layers = TypeAdapter(any_layer()).json_schema(ref_template="#/$defs/{model}")
    defs.update(layers.pop("$defs"))
    schema["properties"]["layers"]["items"] = layers
    for args in (defs[t] for t in LAYER_TYPES):
        args["properties"]["input_shape"] = {"type": "array", "minItems": 1, "items": {
            "anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}]}}
    _rewrite_unions(schema, defs)
    train = defs["TrainSpec"]["properties"]  # loss and metrics also by output name
    one_loss = {k: v for k, v in train["loss"].items() if k != "description"}
    losses = [n for form in one_loss["anyOf"] for n in form.get("enum", [])]
    train["loss"] = {"anyOf": [one_loss, {"type": "object", "minProperties": 1, "additionalProperties": one_loss,
                                          "propertyNames": {"not": {"enum": losses}}}]}
    metrics = {k: v for k, v in train["metrics"].items() if k not in ("default", "description")}
    train["metrics"] = {"default": [], "anyOf": [metrics, {"type": "object", "additionalProperties": {
        "anyOf": [metrics, metrics["items"]]}}]}
    for name, model in list(defs.items()):
        _describe(model, name)
    _describe(schema, "Spec")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "layerc spec"
    return schema


def _rewrite_unions(node, defs):
    """Replace each union tagged by `type` with the name, one-key and `type:` forms."""
    if isinstance(node, list):
        for item in node:
            _rewrite_unions(item, defs)
        return
    if not isinstance(node, dict):
        return
    tag = node.get("discriminator")
    if isinstance(tag, dict) and tag.get("propertyName") == "type" and "mapping" in tag:
        keep = {k: node[k] for k in ("default", "title", "description") if k in node}
        node.clear()
        node.update(_forms(tag["mapping"], defs), **keep)
        return
    for value in list(node.values()):
        _rewrite_unions(value, defs)


def _forms(mapping: dict, defs: dict) -> dict:
    names = dict(mapping)
    names.update({alias: names[target] for alias, target in ALIASES.items() if target in names})
    bare, keyed = [], []
    for ref in dict.fromkeys(names.values()):
        model = ref.split("/")[-1]
        tagged = defs[model]
        tagged["properties"]["type"] = {"enum": [n for n, r in names.items() if r == ref]}
        args = copy.deepcopy(tagged)
        args["properties"].pop("type")
        args["required"] = [r for r in args.get("required", []) if r != "type"]
        if not args["required"]:
            args.pop("required")
        args["title"] = f"{model} arguments"
        defs[f"{model}Args"] = args
    for name, ref in names.items():
        model = ref.split("/")[-1]
        if "required" not in defs[f"{model}Args"]:
            bare.append(name)
        keyed.append({"type": "object", "required": [name], "additionalProperties": False,
                      "properties": {name: {"anyOf": [{"$ref": f"#/$defs/{model}Args"}, {"type": "null"}],
                                            "description": f"{name}'s arguments"}}})
    forms = ([{"enum": bare}] if bare else []) + keyed
    forms += [{"$ref": r} for r in dict.fromkeys(names.values())]
    return {"anyOf": forms, "description": "written `name`, `{name: {args}}` or `{type: name, ...}`"}


def _describe(model: dict, owner: str):
    for key, prop in model.get("properties", {}).items():
        if isinstance(prop, dict) and "description" not in prop:
            prop["description"] = DESCRIPTIONS.get(key, f"`{key}` of {owner}, as in Keras")
