import os

import numpy as np
import pytest


@pytest.fixture(scope="session")
def keras():
    """Keras 3 on the torch backend as a reference, or a clean skip where it is absent."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras parity needs KERAS_BACKEND=torch")
    return keras

SPEC = """\
name: tiny
seed: 7
input: {{shape: [12]}}
layers:
  - Dense: {{units: 16, activation: relu}}
  - BatchNormalization
  - Dropout: {{rate: 0.3}}
  - Dense: {{units: 3, activation: softmax}}
data: {{format: npz, train: data.npz, validation_split: 0.2, test_split: 0.1}}
train:
  optimizer: {{type: adam, learning_rate: {lr}}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  batch_size: 16
  epochs: {epochs}
"""


@pytest.fixture
def tiny_spec(tmp_path):
    """A small spec and a synthetic 3-class .npz beside it; returns a writer(epochs, lr)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 12)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    np.savez(tmp_path / "data.npz", x=x, y=y)

    def write(epochs=4, lr=0.01, name="tiny.yaml"):
        path = tmp_path / name
        path.write_text(SPEC.format(epochs=epochs, lr=lr))
        return path

    return write


@pytest.fixture(params=["im2col", "winograd"])
def conv_path(request, monkeypatch):
    """Run a test twice: 3x3 stride-1 convolutions by im2col, then by Winograd (forced
    for every channel count and output size)."""
    from layerc.core import winograd

    monkeypatch.setattr(winograd, "MIN_CHANNEL_PRODUCT", 0 if request.param == "winograd" else 1 << 62)
    if request.param == "winograd":
        monkeypatch.setattr(winograd, "MIN_OUTPUT_SIDE", 0)
    return request.param
