import math

import pytest

from layerc.spec.train import CosineDecay, ExponentialDecay, StepDecay
from layerc.train.schedules import make_schedule

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SPECS = [
    ExponentialDecay(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5),
    ExponentialDecay(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5, staircase=True),
    StepDecay(boundaries=[2, 5], values=[1.0, 0.5, 0.1]),
    CosineDecay(initial_learning_rate=0.1, decay_steps=8),
    CosineDecay(initial_learning_rate=0.1, decay_steps=8, alpha=0.2),
    CosineDecay(initial_learning_rate=0.0, decay_steps=6, warmup_target=0.2, warmup_steps=4),
    CosineDecay(initial_learning_rate=0.01, decay_steps=6, alpha=0.1, warmup_target=0.2,
                warmup_steps=3),
]
STEPS = range(0, 14)


def test_constant():
    lr = make_schedule(0.01)
    assert lr(0) == lr(1000) == 0.01
    assert make_schedule(1)(5) == 1.0


def test_literal_values():
    exp = make_schedule(SPECS[0])
    assert exp(3) == pytest.approx(0.05) and exp(6) == pytest.approx(0.025)
    assert make_schedule(SPECS[1])(5) == pytest.approx(0.05)
    step = make_schedule(SPECS[2])
    assert [step(s) for s in (0, 2, 3, 5, 6)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    cos = make_schedule(SPECS[3])
    assert cos(0) == pytest.approx(0.1) and cos(4) == pytest.approx(0.05) and cos(8) == pytest.approx(0)
    assert cos(100) == pytest.approx(0)
    warm = make_schedule(SPECS[5])
    assert [warm(s) for s in (0, 2, 4)] == pytest.approx([0.0, 0.1, 0.2])
    assert warm(7) == pytest.approx(0.1) and warm(10) == pytest.approx(0.0, abs=1e-12)
    assert make_schedule(SPECS[4])(8) == pytest.approx(0.02)


def _keras_schedule(keras, spec):
    S = keras.optimizers.schedules
    if isinstance(spec, ExponentialDecay):
        return S.ExponentialDecay(spec.initial_learning_rate, spec.decay_steps, spec.decay_rate,
                                  staircase=spec.staircase)
    if isinstance(spec, StepDecay):
        return S.PiecewiseConstantDecay(spec.boundaries, spec.values)
    return S.CosineDecay(spec.initial_learning_rate, spec.decay_steps, alpha=spec.alpha,
                         warmup_target=spec.warmup_target, warmup_steps=spec.warmup_steps)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_matches_keras(keras, spec):
    ours, theirs = make_schedule(spec), _keras_schedule(keras, spec)
    for step in STEPS:
        ref = float(keras.ops.convert_to_numpy(theirs(step)))
        assert math.isclose(ours(step), ref, rel_tol=2e-6, abs_tol=1e-8), step
