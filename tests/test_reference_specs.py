"""Smoke runs of the six reference specs: each trains a few batches on its real data and
its loss falls. Full-accuracy runs are benchmarks/reproduce.py's job."""
from pathlib import Path

import numpy as np
import pytest

import layerc
from layerc import jobs
from layerc.train.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["mnist_cnn", "mnist_mlp", "sms_spam_lstm", "temperature_forecast", "mnist_resnet", "sms_spam_transformer"]


@pytest.mark.parametrize("name", SPECS)
def test_reference_spec_learns_on_its_data(name):
    spec = layerc.load_spec(ROOT / "specs" / f"{name}.yaml", ["data.limit=768"])
    assert (ROOT / "specs" / f"{name}.yaml").read_text().startswith("#"), "starts with its claim"
    model = layerc.build(spec)
    data = jobs.load_dataset(spec, model)
    x, y = data.train
    trainer = Trainer(model, spec.train)
    # Training-mode losses: BatchNormalization's moving averages lag behind in a few steps.
    losses = [trainer.train_step(x[s:s + 32], y[s:s + 32]) for _ in range(4) for s in range(0, 256, 32)]
    before, after = np.mean(losses[:4]), np.mean(losses[-4:])
    assert np.isfinite(after) and after < before, (before, after)
