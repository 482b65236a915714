"""The same graph in Keras 3 (torch backend), carrying a layerc model's weights, for the
parity tests of the attention, wrapper and small layers. Masks flow as Keras's do."""
from __future__ import annotations

import numpy as np


def keras_layer(keras, spec, name=None):
    """A Keras layer built from a layerc layer spec (the arguments are Keras's, one to one)."""
    args = spec.model_dump(exclude={"type", "name", "inputs", "use_causal_mask"}, exclude_none=True)
    if args.get("trainable") is True:
        del args["trainable"]  # the default; Keras's SpatialDropout does not take it
    if spec.type == "TimeDistributed":
        args["layer"] = keras_layer(keras, spec.layer)
    if spec.type == "PositionEmbedding":
        return position_embedding(keras)(name=name, **args)
    if spec.type == "Normalization":
        args["axis"] = spec.axis  # None is Keras's "one mean over everything", not its default
    if spec.type == "LayerScale":  # keras.applications.convnext's, not in keras.layers
        from keras.src.applications.convnext import LayerScale

        return LayerScale(name=name, **args)
    for key in ("output_shape", "dims", "target_shape"):
        if isinstance(args.get(key), list):
            args[key] = tuple(args[key])
    if name is not None:
        args["name"] = name
    return getattr(keras.layers, spec.type)(**args)


def position_embedding(keras):
    """layerc's PositionEmbedding in Keras: X + embeddings[:T], the input's mask passed on."""

    class PositionEmbedding(keras.layers.Layer):
        def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
            super().__init__(**kwargs)
            self.sequence_length, self.initializer = sequence_length, initializer
            self.supports_masking = True

        def build(self, shape):
            self.embeddings = self.add_weight(name="embeddings", initializer=self.initializer,
                                              shape=(self.sequence_length, shape[-1]))

        def call(self, x):
            return x + self.embeddings[: x.shape[-2]]

    return PositionEmbedding


def twin(keras, model):
    """(Keras model, {name: Keras layer}) of a layerc model, with its weights."""
    tensors = {n: keras.Input(shape=tuple(i.shape), dtype=i.dtype, name=n) for n, i in model.graph.inputs.items()}
    inputs = [tensors[n] for n in model.input_names]
    layers = {}
    for node in model.nodes:
        spec = node.layer.spec
        layer = keras_layer(keras, spec, node.name)
        args = [tensors[s] for s in node.inputs]
        if spec.type == "MultiHeadAttention":
            q, v, *k = args if len(args) > 1 else args * 2
            tensors[node.name] = layer(q, v, *k, use_causal_mask=spec.use_causal_mask)
        else:
            tensors[node.name] = layer(args if node.layer.multi_input else args[0])
        layers[node.name] = layer
    km = keras.Model(inputs, [tensors[n] for n in model.output_names])
    for node in model.nodes:
        layers[node.name].set_weights(list(node.layer.weights.values()))
    return km, layers


def randomise(model, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-scale, scale, w.shape).astype(w.dtype) for w in model.get_weights()])


def same_summary(model, layers):
    """Every layer's parameter count and output shape equal Keras's."""
    for node in model.nodes:
        k = layers[node.name]
        assert node.n_params == k.count_params(), node.name
        assert (None, *node.output_shape) == tuple(k.output.shape), node.name
    assert model.count_params() == sum(k.count_params() for k in layers.values())


def sgd_steps_match(keras, model, x, y, loss, steps=3):
    """`steps` SGD steps (the spec's learning rate) from the same weights give Keras's losses
    and weights."""
    from layerc.train.loop import Trainer

    lr = model.spec.train.optimizer.learning_rate
    km, _ = twin(keras, model)
    km.compile(optimizer=keras.optimizers.SGD(lr), loss=loss)
    trainer = Trainer(model, model.spec.train)
    for _ in range(steps):
        ours = trainer.train_step(x, y)
        theirs = float(km.train_on_batch(x, y))
        assert abs(ours - theirs) <= 1e-4 * max(1.0, abs(theirs)), (ours, theirs)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
