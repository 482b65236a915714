"""Rules on the shape of the network: downsampling, flattening, depth."""
from __future__ import annotations

from .context import RECURRENT, REDUCING, WEIGHT_LAYERS, layer_path, shape_text
from .registry import rule

LARGE_SIDE = 64
DEEP = 6
SEQUENCE_MAKERS = RECURRENT | {"Conv1D", "Embedding", "MaxPooling1D"}


def _downsamples(ctx, node) -> bool:
    s = ctx.layer(node)
    if s.type in ("MaxPooling2D", "AveragePooling2D"):
        return True
    strides = getattr(s, "strides", 1)
    return s.type == "Conv2D" and strides not in (1, (1, 1), [1, 1])


@rule("LC201", "large-image-flattened-without-downsampling",
      "convolutions over a large image (side >= 64) reach Flatten with no pooling or stride")
def large_image_flattened(ctx):
    """Convolutions keep the image's size; Flatten then turns every position of every channel
    into a feature, and the Dense layer after it gets one weight per feature and unit. Over a
    large image (a side of 64 or more) with no pooling or stride on the way, that Dense layer
    alone holds millions of parameters: slow, memory-hungry and quick to overfit. The
    convolutions learn local features; pooling is what makes the feature map small.

    Fix: put `MaxPooling2D` after each convolution block (or give convolutions `strides: 2`),
    or replace Flatten with `GlobalAveragePooling2D`."""
    side = max((max(s.shape[:2]) for s in ctx.graph.inputs.values()
                if len(s.shape) == 3 and None not in s.shape[:2]), default=0)
    if side < LARGE_SIDE:
        return
    convolved = ctx.upstream(lambda n: ctx.type(n) == "Conv2D")
    downsampled = ctx.upstream(lambda n: _downsamples(ctx, n))
    for node in ctx.graph.nodes:
        if ctx.type(node) != "Flatten" or len(node.input_shape) != 3 \
                or not convolved[node.name] or downsampled[node.name]:
            continue
        features = node.output_shape[0]
        if features is None:  # a variable size: no count to state
            continue
        after = [n for n in ctx.users[node.name] if ctx.type(n) == "Dense"]
        cost = (f"'{after[0].name}' after it has {after[0].n_params:,} parameters" if after
                else "the next layer gets them all")
        yield (layer_path(node), True,
               f"Flatten gets {shape_text(node.input_shape)} from convolutions with no pooling or stride: "
               f"{features:,} features, so {cost}; add MaxPooling2D (or strides: 2) after the "
               "convolutions, or use GlobalAveragePooling2D")


def _reduces(ctx, node) -> bool:
    rnn = ctx.recurrent(node)
    return ctx.type(node) in REDUCING or (rnn is not None and not rnn.return_sequences)


@rule("LC202", "dense-on-unflattened-input",
      "Dense applied to an input of rank >= 3 that is never flattened or pooled")
def dense_on_unflattened(ctx):
    """Dense works on the last axis only (as in Keras): on a (None, 28, 28, 1) image it maps
    each pixel's one channel on its own and gives (None, 28, 28, 10), not ten scores per image.
    Unless a Flatten or global pooling comes after, the model's output keeps those axes: the
    spec is valid (as in Keras), and only `train` stops, at the labels ("each sample has 1
    target value(s) but the model's output needs 784"). (Dense over the steps of a
    sequence, after a recurrent, Conv1D or Embedding layer, is per-step on purpose and not
    reported here.)

    Fix: put `Flatten` (or `GlobalAveragePooling2D` after convolutions) before the Dense layer."""
    outs = {o.name for o in ctx.outputs() if len(o.output_shape) >= 2}
    unreduced = ctx.downstream(lambda n: n.name in outs, lambda n: _reduces(ctx, n))
    sequence = ctx.upstream(lambda n: ctx.type(n) in SEQUENCE_MAKERS)
    for node in ctx.graph.nodes:
        if ctx.type(node) == "Dense" and len(node.input_shape) >= 2 and unreduced[node.name] \
                and not sequence[node.name]:
            yield (layer_path(node), True,
                   f"Dense '{node.name}' gets {shape_text(node.input_shape)} and maps only its last axis, "
                   f"giving {shape_text(node.output_shape)}; add Flatten (or global pooling) before it")


@rule("LC203", "deep-without-regularization",
      "six or more weight layers with neither BatchNormalization nor Dropout")
def deep_without_regularization(ctx):
    """A deep stack of weight layers (six or more Dense, convolution or recurrent layers) with no
    normalisation trains slowly and unevenly (activations drift in scale from layer to layer)
    and, with no dropout, overfits readily. BatchNormalization keeps each layer's inputs in
    range; Dropout (or a recurrent layer's `dropout`) regularises.

    Fix: add `BatchNormalization` after the convolutions or Dense layers (before their
    activation, as in the shipped mnist_mlp and mnist_resnet specs) and/or `Dropout` before the
    last Dense layers; LayerNormalization counts as normalisation too. Or use fewer layers."""
    nodes = ctx.graph.nodes
    weights = [n for n in nodes if ctx.type(n) in WEIGHT_LAYERS]
    regular = any(ctx.type(n) in ("BatchNormalization", "LayerNormalization", "Dropout") for n in nodes) \
        or any(r is not None and (r.dropout or r.recurrent_dropout) for r in map(ctx.recurrent, nodes))
    if len(weights) >= DEEP and not regular:
        yield (("layers",), True,
               f"{len(weights)} weight layers and neither BatchNormalization nor Dropout: deep stacks "
               "train better normalised and regularised; add BatchNormalization and/or Dropout")
