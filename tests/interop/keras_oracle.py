"""Shared by the Keras file tests: random non-initial weights, inputs, and comparisons."""
import numpy as np


def randomise_keras(model, seed=0):
    """Every Keras weight random (BatchNormalization variances positive)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        names = [w.path for w in layer.weights]
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in n else rng.uniform(-0.4, 0.4, w.shape)
                           for w, n in zip(ws, names)])


def inputs_for(model, n=6, seed=1, vocab=20):
    """A batch for a layerc model's inputs: normal floats, or right-padded integer ids."""
    rng = np.random.default_rng(seed)
    xs = []
    for name in model.input_names:
        spec = model.graph.inputs[name]
        if spec.dtype == "int32":
            x = rng.integers(1, vocab, (n, *spec.shape)).astype(np.int32)
            for i in range(n):
                x[i, rng.integers(1, spec.shape[0] + 1):] = 0  # right padding, lengths 1..T
            xs.append(x)
        else:
            xs.append(rng.standard_normal((n, *spec.shape)).astype(np.float32))
    return xs


def as_list(y):
    return [np.asarray(a) for a in y] if isinstance(y, (list, tuple)) else [np.asarray(y)]


def assert_same(ours, theirs, atol=1e-5):
    ours, theirs = as_list(ours), as_list(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        assert float(np.max(np.abs(a - b))) <= atol, float(np.max(np.abs(a - b)))


def feed(xs):
    return xs if len(xs) > 1 else xs[0]
