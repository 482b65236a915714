"""Keras's `adapt` for the layers that learn statistics before training (Normalization without
a mean and variance): their inputs over the training data, streamed batch by batch in order
(deterministic, nothing copied), before the first training step."""
from __future__ import annotations


def pending(model) -> list:
    """The nodes whose layer still needs adapting, in graph order."""
    model.build()
    return [n for n in model.nodes if getattr(n.layer, "needs_adapt", None) and n.layer.needs_adapt()]


def adapt(model, xs, batch_size: int) -> list[str]:
    """Adapt every pending layer from the training inputs `xs` (a list of arrays, one per
    model input); each layer sees its own input, with the layers before it (adapted first)
    in inference mode. Returns one line per adapted layer."""
    from ..core.normalization_pre import Collected

    done = []
    n = len(xs[0])
    for node in pending(model):
        node.layer.start_adapt()
        try:
            for start in range(0, n, batch_size):
                try:
                    model.forward([a[start:start + batch_size] for a in xs], training=False)
                except Collected:  # the pass stops at the layer: nothing after it runs
                    pass
        finally:
            count = node.layer.finish_adapt()
        done.append(f"{node.layer.spec.type} '{node.name}': mean and variance adapted from {n} training "
                    f"samples ({count} values each)")
    return done


def check_adapted(model) -> None:
    """A located SpecError for each layer that needs adapting when there is no training data
    to adapt it from (an export or a prediction from initial weights)."""
    from ..jobs import _diag
    from ..spec.diagnostics import SpecError

    nodes = pending(model)
    if nodes:
        raise SpecError([_diag(model.spec, ("layers", n.index),
                               f"{n.layer.spec.type} '{n.name}' has no mean and variance: they are adapted "
                               "from the training data when training starts; train the model first (or "
                               "load its trained weights), or give mean and variance in the spec")
                         for n in nodes])
