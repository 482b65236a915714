
import numpy as np
import pytest

from layerc.spec.train import TrainSpec
from layerc.train.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop, make_optimizer

# keras's torch Variable.__array__ predates numpy 2's copy keyword
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SHAPES = [(3, 4), (4,), (2, 2, 3)]


def _problem(seed=0, dtype=np.float32, steps=5, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * scale).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return params, grads


def _run(opt, params, grads):
    params = [p.copy() for p in params]
    ids = [id(p) for p in params]
    for g in grads:
        opt.step(params, g)
    assert [id(p) for p in params] == ids  # updated in place
    return params


# -- hand-computed first steps -------------------------------------------------------------

def test_sgd_first_steps():
    W = np.array([1.0, -2.0], np.float32)
    g = np.array([0.5, 1.0], np.float32)
    SGD(0.1).step([W], [g])
    np.testing.assert_allclose(W, [0.95, -2.1], rtol=1e-6)
    W = np.array([1.0], np.float32)
    opt = SGD(0.1, momentum=0.9)
    opt.step([W], [np.array([1.0], np.float32)])  # m = -0.1
    opt.step([W], [np.array([1.0], np.float32)])  # m = -0.09 - 0.1 = -0.19
    np.testing.assert_allclose(W, [1 - 0.1 - 0.19], rtol=1e-6)
    W = np.array([1.0], np.float32)
    SGD(0.1, momentum=0.9, nesterov=True).step([W], [np.array([1.0], np.float32)])
    np.testing.assert_allclose(W, [1 + 0.9 * -0.1 - 0.1], rtol=1e-6)


def test_adam_first_step_is_lr_times_sign():
    W = np.array([1.0, 1.0], np.float32)
    Adam(0.01).step([W], [np.array([3.0, -0.5], np.float32)])
    # m_hat / sqrt(v_hat) = sign(g) on the first step (up to epsilon)
    np.testing.assert_allclose(W, [0.99, 1.01], rtol=1e-5)


def test_adagrad_rmsprop_first_step():
    W = np.array([1.0], np.float32)
    Adagrad(0.1).step([W], [np.array([2.0], np.float32)])
    np.testing.assert_allclose(W, [1 - 0.1 * 2 / np.sqrt(0.1 + 4 + 1e-7)], rtol=1e-6)
    W = np.array([1.0], np.float32)
    RMSprop(0.1).step([W], [np.array([2.0], np.float32)])
    np.testing.assert_allclose(W, [1 - 0.1 * 2 / np.sqrt(0.1 * 4 + 1e-7)], rtol=1e-6)


def test_adamw_decays_weights_before_the_update():
    W = np.array([2.0], np.float32)
    AdamW(0.1, weight_decay=0.5).step([W], [np.array([0.0], np.float32)])
    np.testing.assert_allclose(W, [2.0 * (1 - 0.05)], rtol=1e-6)


def test_clipping():
    g = np.array([3.0, 4.0], np.float32)  # norm 5
    W = np.zeros(2, np.float32)
    SGD(1.0, clipnorm=1.0).step([W], [g])
    np.testing.assert_allclose(W, [-0.6, -0.8], rtol=1e-6)
    np.testing.assert_array_equal(g, [3.0, 4.0])  # the caller's gradient is untouched
    W = np.zeros(2, np.float32)
    SGD(1.0, clipvalue=3.5).step([W], [g])
    np.testing.assert_allclose(W, [-3.0, -3.5])
    with pytest.raises(ValueError):
        SGD(clipnorm=1.0, clipvalue=1.0)


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), RMSprop(centered=True, momentum=0.5),
                                 Adagrad(), Adam(amsgrad=True), AdamW()])
def test_float32_stays_float32_and_float64_works(opt):
    for dtype in (np.float32, np.float64):
        params, grads = _problem(dtype=dtype, steps=2)
        out = _run(type(opt)(), params, grads)
        assert all(p.dtype == dtype for p in out)
    params, grads = _problem(steps=2)
    _run(opt, params, grads)
    assert all(a.dtype == np.float32 for a in opt.get_state().values() if a.ndim)


def test_state_round_trip_resumes_exactly(tmp_path):
    params, grads = _problem(steps=6)
    straight = _run(Adam(0.01, amsgrad=True), params, grads)
    opt = Adam(0.01, amsgrad=True)
    half = _run(opt, params, grads[:3])
    opt.learning_rate = 0.005  # e.g. ReduceLROnPlateau
    np.savez(tmp_path / "opt.npz", **opt.get_state())
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        state = dict(f)
    assert int(state["iterations"]) == 3 and set(state) >= {"momentum_0", "velocity_2", "velocity_hat_1"}
    resumed = Adam(0.01, amsgrad=True)
    resumed.set_state(state)
    assert resumed.iterations == 3 and resumed.learning_rate == pytest.approx(0.005)
    resumed.learning_rate = 0.01
    end = _run(resumed, half, grads[3:])
    for a, b in zip(end, straight):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_override_scales_a_schedule():
    from layerc.spec.train import ExponentialDecay
    opt = SGD(ExponentialDecay(initial_learning_rate=0.1, decay_steps=1, decay_rate=0.5))
    assert opt.learning_rate == pytest.approx(0.1)
    opt.learning_rate = 0.01
    opt.step([np.zeros(1)], [np.zeros(1)])
    assert opt.learning_rate == pytest.approx(0.005)


def test_make_optimizer_from_spec():
    spec = TrainSpec(loss="mse", optimizer={"type": "sgd", "learning_rate": 0.05, "momentum": 0.9,
                                            "nesterov": True, "clipnorm": 1.0})
    opt = make_optimizer(spec.optimizer)
    assert isinstance(opt, SGD) and opt.momentum == 0.9 and opt.nesterov and opt.clipnorm == 1.0
    assert opt.learning_rate == 0.05
    opt = make_optimizer(TrainSpec(loss="mse", optimizer="adamw").optimizer)
    assert isinstance(opt, AdamW) and opt.weight_decay == 0.004 and opt.learning_rate == 0.001
    assert isinstance(make_optimizer("rmsprop"), RMSprop)
    sched = TrainSpec(loss="mse", optimizer={"adam": {"learning_rate": {
        "type": "cosine_decay", "initial_learning_rate": 0.0, "decay_steps": 10,
        "warmup_target": 0.1, "warmup_steps": 5}}}).optimizer
    opt = make_optimizer(sched)
    assert opt.learning_rate == 0.0
    opt.iterations = 5
    assert opt.learning_rate == pytest.approx(0.1)


# -- N-step parity with keras.optimizers (torch backend) -----------------------------------


def _sched(keras, kind):
    S = keras.optimizers.schedules
    if kind == "exp":
        return ({"type": "exponential_decay", "initial_learning_rate": 0.05, "decay_steps": 2,
                 "decay_rate": 0.5, "staircase": False},
                S.ExponentialDecay(0.05, 2, 0.5))
    if kind == "step":
        return ({"type": "step_decay", "boundaries": [1, 3], "values": [0.05, 0.02, 0.01]},
                S.PiecewiseConstantDecay([1, 3], [0.05, 0.02, 0.01]))
    return ({"type": "cosine_decay", "initial_learning_rate": 0.0, "decay_steps": 3,
             "alpha": 0.1, "warmup_target": 0.05, "warmup_steps": 2},
            S.CosineDecay(0.0, 3, alpha=0.1, warmup_target=0.05, warmup_steps=2))


PARITY = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.5, "clipnorm": 0.5}),
    ("sgd", {"clipvalue": 0.3}),
    ("sgd", {"learning_rate": "exp", "momentum": 0.9}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.8, "rho": 0.7, "clipnorm": 0.5}),
    ("adagrad", {}),
    ("adagrad", {"initial_accumulator_value": 0.5, "learning_rate": 0.05, "clipvalue": 0.4}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "learning_rate": 0.01}),
    ("adam", {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3, "clipnorm": 0.5}),
    ("adam", {"learning_rate": "step"}),
    ("adam", {"learning_rate": "cosine"}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.1, "learning_rate": 0.05, "amsgrad": True}),
    ("adamw", {"learning_rate": "cosine", "weight_decay": 0.5}),
]
KERAS_NAMES = {"sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adam": "Adam",
               "adamw": "AdamW"}


@pytest.mark.parametrize("kind,args", PARITY, ids=[f"{k}-{i}" for i, (k, _) in enumerate(PARITY)])
def test_n_steps_match_keras(keras, kind, args):
    import torch
    ours_args, theirs_args = dict(args), dict(args)
    if isinstance(args.get("learning_rate"), str):
        ours_args["learning_rate"], theirs_args["learning_rate"] = _sched(keras, args["learning_rate"])
    spec = TrainSpec(loss="mse", optimizer={"type": kind, **ours_args}).optimizer
    opt = make_optimizer(spec)
    ref = getattr(keras.optimizers, KERAS_NAMES[kind])(**theirs_args)
    params, grads = _problem(seed=3, steps=5, scale=2.0)
    variables = [keras.Variable(p.copy()) for p in params]
    ours = [p.copy() for p in params]
    for g in grads:
        opt.step(ours, g)
        ref.apply_gradients([(torch.tensor(gi), v) for gi, v in zip(g, variables)])
        for a, v in zip(ours, variables):
            np.testing.assert_allclose(a, v.value.detach().numpy(), rtol=2e-5, atol=2e-6)
    assert opt.iterations == int(ref.iterations.numpy()) == 5
    assert opt.learning_rate == pytest.approx(float(ref.learning_rate), rel=1e-5)



@pytest.mark.parametrize("opt", [lambda: SGD(0.1, momentum=0.9, nesterov=True),
                                 lambda: RMSprop(centered=True, momentum=0.5), lambda: Adagrad(),
                                 lambda: Adam(amsgrad=True), lambda: AdamW(), lambda: Adam(clipnorm=0.5)])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_chunked_updates_equal_whole_array_updates(monkeypatch, opt, threads):
    """Variables above _CHUNK values are updated a chunk at a time (split over threads):
    the same values, bit for bit, as the whole-array update; a non-contiguous variable
    takes the whole-array path."""
    from layerc.train import optimizers

    monkeypatch.setenv("LAYERC_NUM_THREADS", threads)
    rng = np.random.default_rng(7)
    shapes = [(37, 11), (5,), (300,), (40, 12)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(4)]
    grads[1][0] = np.asfortranarray(grads[1][0])  # a gradient in another layout
    results = []
    for chunk in (1 << 30, 64):
        monkeypatch.setattr(optimizers, "_CHUNK", chunk)
        params = [p.copy() for p in start[:-1]]
        params.append(np.zeros((40, 24), np.float32)[:, ::2])  # not contiguous
        params[-1][...] = start[-1]
        o = opt()
        for g in grads:
            o.step(params, g)
        results.append(params)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
