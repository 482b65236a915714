"""Rules on sequence models: the layer families that fit text, time series and images."""
from __future__ import annotations

from .context import CLASSIFICATION, RECURRENT, REDUCING, layer_path, shape_text
from .registry import rule

ORDER_AWARE = RECURRENT | {"Conv1D", "MultiHeadAttention"}


@rule("LC301", "sequence-data-without-sequence-layer",
      "text or time-series data and no recurrent, Conv1D or attention layer")
def sequence_without_sequence_layer(ctx):
    """Text and time series are sequences: what a step means depends on the steps around it.
    A model of Dense layers (or an Embedding averaged by global pooling) sees a bag of
    values, not their order. The Keras guide: sequences -> LSTM/GRU, or Conv1D for local
    patterns.

    Fix: add an `LSTM` or `GRU` (or `Conv1D` with pooling, or `MultiHeadAttention` with a
    `PositionEmbedding`) after the input or the Embedding.
    A bag-of-words baseline that ignores order on purpose may disable LC301."""
    kind = ctx.data_kind()
    if kind in ("text", "series") and not any(ctx.type(n) in ORDER_AWARE for n in ctx.graph.nodes):
        what = "text" if kind == "text" else "a time series"
        yield (ctx.data_path(), False,
               f"the data is {what}, but no layer reads its order (no LSTM, GRU, SimpleRNN, "
               "Bidirectional, Conv1D or MultiHeadAttention); add one after the input or the Embedding")


@rule("LC302", "recurrent-on-images", "recurrent layers on image data")
def recurrent_on_images(ctx):
    """A recurrent layer reads its input step by step: fed an image, it reads rows as time steps,
    one after another, and loses the vertical neighbourhood a convolution sees at once. It is
    slower and, on images, less accurate than Conv2D with pooling (the Keras guide: images ->
    Conv2D).

    Fix: use `Conv2D` + `MaxPooling2D` blocks, then `Flatten` or `GlobalAveragePooling2D` and
    Dense. A row-by-row RNN as an experiment may disable LC302 on its line."""
    image = ctx.data_kind() == "image" or any(len(s.shape) == 3 for s in ctx.graph.inputs.values())
    rnns = [n for n in ctx.graph.nodes if ctx.type(n) in RECURRENT]
    if image and rnns:
        yield (layer_path(rnns[0]), True,
               f"'{rnns[0].name}' ({ctx.type(rnns[0])}) reads image data row by row; images take "
               "Conv2D with pooling")


@rule("LC303", "sequences-reach-classification-loss",
      "a return_sequences: true output reaches a classification loss without reduction")
def sequences_reach_loss(ctx):
    """`return_sequences: true` makes a recurrent layer output every step, (None, steps, units),
    not one vector per sample. That is right before another recurrent layer or a pooling layer;
    but when the steps reach the output unreduced, a classification loss compares every step
    with the one label of the sample.

    Fix: drop `return_sequences: true` from the last recurrent layer (it then returns the last
    step), or reduce the steps with `GlobalAveragePooling1D` (or Flatten) before the classifier."""
    for out in ctx.outputs():
        loss = ctx.loss_for(out)
        if loss is None or loss.type not in CLASSIFICATION or len(out.output_shape) < 2:
            continue
        node = out
        while True:
            rnn = ctx.recurrent(node)
            if rnn is not None or ctx.type(node) in REDUCING or len(ctx.sources(node)) != 1:
                break
            node = ctx.sources(node)[0]
        if rnn is not None and rnn.return_sequences:
            yield (layer_path(node), True,
                   f"'{node.name}' returns sequences, and they reach {loss.type} unreduced as "
                   f"{shape_text(out.output_shape)}: drop return_sequences here, or add "
                   "GlobalAveragePooling1D before the classifier")
