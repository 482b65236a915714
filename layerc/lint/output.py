"""Rules on a model's output: does its last activation fit the loss?"""
from __future__ import annotations

from .context import CLASSIFICATION, REGRESSION, layer_path
from .registry import rule

PROBABILITIES = {"softmax", "sigmoid"}


def _ends(ctx):
    """(output node, node whose activation ends it, activation, loss type, from_logits) per output."""
    for out in ctx.outputs():
        loss = ctx.loss_for(out)
        if loss is None:
            continue
        last, act = ctx.final_activation(out)
        yield out, last, act, loss.type, getattr(loss, "from_logits", False)


@rule("LC101", "loss-needs-probabilities",
      "a crossentropy loss without from_logits after a last layer that is not softmax or sigmoid")
def loss_needs_probabilities(ctx):
    """A crossentropy loss reads the model's output as probabilities unless `from_logits: true`
    says it gets raw scores. After a last layer with a linear, relu or tanh activation the output
    is no probability: the loss clips it into (0, 1) and training goes nowhere, or nearly so.

    Fix: end the model in `activation: softmax` (categorical and sparse categorical
    crossentropy) or `activation: sigmoid` (binary crossentropy), or keep the linear output and
    write the loss `{type: ..., from_logits: true}` (layerc then fuses the softmax or sigmoid
    into the loss, which is as stable)."""
    for out, last, act, loss, logits in _ends(ctx):
        if loss in CLASSIFICATION and not logits and act not in PROBABILITIES:
            want = "sigmoid" if loss == "binary_crossentropy" else "softmax"
            yield (layer_path(last), True,
                   f"{loss} expects probabilities, but '{last.name}' ends in a {act} activation: "
                   f"give it activation: {want}, or write the loss with from_logits: true")


@rule("LC102", "logits-after-softmax",
      "from_logits: true with a last layer that already applies softmax or sigmoid")
def logits_after_softmax(ctx):
    """`from_logits: true` tells the loss that the model outputs raw scores, so the loss applies
    softmax (or sigmoid) itself. If the last layer applies it already, it is applied twice: the
    outputs are squashed into a narrow band, the gradients shrink and accuracy suffers, while
    `predict` returns the first softmax's values, which still look like probabilities.

    Fix: drop `from_logits: true` from the loss, or make the last layer linear."""
    for out, last, act, loss, logits in _ends(ctx):
        if logits and act in PROBABILITIES:
            yield (layer_path(last), True,
                   f"the loss has from_logits: true, but '{last.name}' already applies {act}: it is "
                   "applied twice; drop from_logits or make the last layer linear")


@rule("LC103", "regression-with-squashed-output",
      "a regression loss after a softmax or sigmoid last layer")
def regression_with_squashed_output(ctx):
    """Mean squared error, mean absolute error and Huber fit real-valued targets, which a
    softmax (outputs sum to one) or a sigmoid (outputs in (0, 1)) cannot reach: any target
    outside that range is never predicted, and the saturated activation slows training.
    Regression ends in a linear layer.

    Fix: remove the activation of the last layer (`activation: linear`, the default). If the
    targets really are probabilities in [0, 1], a sigmoid is right: disable LC103 on that line."""
    for out, last, act, loss, logits in _ends(ctx):
        if loss in REGRESSION and act in PROBABILITIES:
            yield (layer_path(last), True,
                   f"{loss} is a regression loss, but '{last.name}' squashes its output with {act}: "
                   "a regression ends in a linear layer")


@rule("LC104", "softmax-on-one-unit", "softmax over a single unit, whose output is always 1")
def softmax_on_one_unit(ctx):
    """Softmax normalises over the last axis: over one unit it divides the value by itself, so
    the output is 1 whatever the input, and nothing is learnt.

    Fix: for a yes/no output use `units: 1` with `activation: sigmoid` and binary
    crossentropy; for N classes give the layer `units: N`."""
    for node in ctx.graph.nodes:
        if getattr(ctx.layer(node), "activation", None) == "softmax" and node.output_shape[-1:] == (1,):
            yield (layer_path(node), True,
                   f"'{node.name}' applies softmax over one unit: its output is always 1; use "
                   "sigmoid for one yes/no output, or one unit per class")


@rule("LC105", "binary-crossentropy-with-softmax", "binary crossentropy after a softmax last layer")
def binary_crossentropy_with_softmax(ctx):
    """Binary crossentropy scores each output unit as an independent yes/no probability; softmax
    makes the units compete (they sum to one). Over one unit softmax is always 1 (LC104); over
    several it is the wrong model for independent labels and the wrong loss for one-of-N classes.

    Fix: for one yes/no output, `units: 1` and `activation: sigmoid`; for several independent
    labels, sigmoid; for one class out of N, keep softmax and use (sparse) categorical
    crossentropy."""
    for out, last, act, loss, logits in _ends(ctx):
        if loss == "binary_crossentropy" and act == "softmax":
            yield (layer_path(last), True,
                   f"binary_crossentropy after softmax on '{last.name}': use sigmoid for yes/no outputs, "
                   "or (sparse_)categorical_crossentropy for one class out of several")


@rule("LC106", "sparse-categorical-on-one-unit",
      "sparse categorical crossentropy with a one-unit output")
def sparse_categorical_on_one_unit(ctx):
    """Sparse categorical crossentropy takes class ids and needs one output unit per class. With
    one unit there is one class: the loss is zero from the start (with softmax) or the labels
    past 0 index outside the output, and nothing useful is learnt.

    Fix: give the last layer one unit per class (`units: 10` for ten digits); for two classes
    either two units with softmax, or one unit with sigmoid and binary crossentropy."""
    for out, last, act, loss, logits in _ends(ctx):
        if loss == "sparse_categorical_crossentropy" and out.output_shape[-1:] == (1,):
            yield (layer_path(last), True,
                   f"sparse_categorical_crossentropy needs one output unit per class, but '{out.name}' "
                   "has 1: give it one unit per class, or use sigmoid with binary_crossentropy for two")
