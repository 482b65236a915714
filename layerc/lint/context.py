"""What every rule reads: the validated spec, the compiled graph's shapes, and helpers
that answer the questions several rules ask (which activation ends an output, what kind
of data this is, where a layer is written)."""
from __future__ import annotations

from dataclasses import dataclass, field

RECURRENT = {"SimpleRNN", "LSTM", "GRU", "Bidirectional"}
WEIGHT_LAYERS = {"Dense", "Conv1D", "Conv2D", "Conv1DTranspose", "Conv2DTranspose", "DepthwiseConv2D",
                 "SeparableConv2D", "MultiHeadAttention"} | RECURRENT
# Keras's activation layers: the activation they end an output in (Softmax's when over the last axis)
ACTIVATION_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu"}
# layers that leave the activation of what they pass on as it was
TRANSPARENT = {"Dropout", "Flatten", "Reshape"}
# layers after which a sequence or a feature map is one vector per sample
REDUCING = {"Flatten", "Reshape", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"}
CLASSIFICATION = {"categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"}
REGRESSION = {"mean_squared_error", "mean_absolute_error", "huber"}
TEXT_DATASETS = {"sms_spam"}
SERIES_DATASETS = {"melbourne_temperatures", "airline_passengers", "sunspots"}
IMAGE_DATASETS = {"mnist"}


@dataclass
class Context:
    """A spec and its compiled graph, as the rules see them.

    Args:
        spec: the validated `Spec`.
        graph: the compiler's `Graph` (nodes with input and output shapes, without the batch axis).
    """

    spec: object
    graph: object
    text: str = ""  # the file's text, for its comments
    nodes: dict = field(init=False)  # name -> Node
    users: dict = field(init=False)  # name -> the Nodes it feeds
    comments: dict = field(init=False)  # line -> [(code, col), ...] of `# layerc: disable=` comments

    def __post_init__(self):
        from .suppress import disabled

        self.comments = disabled(self.text)
        self.nodes = {n.name: n for n in self.graph.nodes}
        self.users = {n.name: [] for n in self.graph.nodes}
        for n in self.graph.nodes:
            for src in n.inputs:
                if src in self.users:
                    self.users[src].append(n)

    def layer(self, node):
        """The layer's spec model (`Dense`, `LSTM`, ...)."""
        return self.spec.layers[node.index]

    def type(self, node) -> str:
        return self.layer(node).type

    def recurrent(self, node):
        """The recurrent spec of a recurrent or Bidirectional node, else None."""
        s = self.layer(node)
        return s.layer if s.type == "Bidirectional" else s if s.type in RECURRENT else None

    def sources(self, node) -> list:
        """The nodes feeding `node` (model inputs are left out)."""
        return [self.nodes[n] for n in node.inputs if n in self.nodes]

    def upstream(self, test) -> dict:
        """{layer name: whether some layer upstream of it passes `test(node)`}, in one pass."""
        out: dict = {}
        for n in self.graph.nodes:  # in execution order: every source comes first
            out[n.name] = any(test(s) or out[s.name] for s in self.sources(n))
        return out

    def downstream(self, test, stop) -> dict:
        """{layer name: whether its output reaches a layer passing `test(node)` (itself included)
        through none that passes `stop(node)`}, in one pass."""
        out: dict = {}
        for n in reversed(self.graph.nodes):
            out[n.name] = test(n) or any(not stop(u) and out[u.name] for u in self.users[n.name])
        return out

    def outputs(self) -> list:
        return [self.nodes[n] for n in self.graph.outputs if n in self.nodes]

    def final_activation(self, node):
        """(the node whose activation ends this output, that activation's name)."""
        while self.type(node) in TRANSPARENT and len(self.sources(node)) == 1:
            node = self.sources(node)[0]
        if self.type(node) == "Softmax" and _over_last_axis(self.layer(node).axis, len(node.output_shape)):
            return node, "softmax"
        if self.type(node) in ACTIVATION_LAYERS:
            return node, ACTIVATION_LAYERS[self.type(node)]
        return node, getattr(self.layer(node), "activation", "linear")

    @property
    def loss(self):
        """The loss spec (`.type`, `.from_logits` for crossentropies), or None without `train:`."""
        return self.spec.train.loss if self.spec.train is not None else None

    def loss_for(self, node):
        """The loss of one output node (a `train.loss` mapping names it), or None."""
        return self.spec.train.loss_for(node.name) if self.spec.train is not None else None

    def data_kind(self) -> str | None:
        """'text', 'series', 'image' or another format name of `data:`, or None without data."""
        data = self.spec.data
        if data is None:
            return None
        name = getattr(data, "dataset", None)
        if name is not None:
            return ("text" if name in TEXT_DATASETS else "series" if name in SERIES_DATASETS
                    else "image" if name in IMAGE_DATASETS else name)
        fmt = getattr(data, "format", None)
        return {"text": "text", "text_files": "text", "timeseries": "series", "idx": "image",
                "images": "image"}.get(fmt, fmt)

    def data_path(self) -> tuple:
        """Where `data:` says what it is: its `dataset` or `format` value."""
        return ("data", "dataset" if getattr(self.spec.data, "dataset", None) else "format")


def layer_path(node) -> tuple:
    """The source path of a layer's type, for a diagnostic at the layer's line."""
    return ("layers", node.index, "type")


def shape_text(shape) -> str:
    from ..compiler import keras_shape

    return keras_shape(shape)


def _over_last_axis(axis, rank: int) -> bool:
    """Whether a Softmax `axis` (batch axis 0) is the last axis of a rank-`rank` output (no batch)."""
    axes = axis if isinstance(axis, list) else [axis]
    return len(axes) == 1 and axes[0] % (rank + 1) == rank
