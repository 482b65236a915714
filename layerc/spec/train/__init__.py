"""The `train:` section: optimizer, loss, metrics, fit arguments and callbacks.

Keras 3 names and defaults throughout. Every named choice is written either as a bare
name (`optimizer: adam`), as a mapping with `type` (`{type: sgd, momentum: 0.9}`), or,
like layers, as a one-key mapping (`{sgd: {momentum: 0.9}}`). Learning-rate schedule
steps count optimizer updates (batches), as in Keras.

The callback models live in `callbacks.py`, imported when a spec names a callback or a
schema holding their union is built (`from layerc.spec.train import EarlyStopping` works as
for a plain module); every spec names an optimizer (or takes the default), a loss and
mostly metrics, so those stay here.
"""

import functools
import typing
from typing import Annotated, Literal, Optional, Union

from pydantic import (
    Discriminator, Field, StrictBool, StrictInt, Tag, TypeAdapter, ValidationError, create_model, field_validator,
    model_validator,
)

from ..layers import Fraction, Name, NonNegInt, PosFloat, PosInt, Strict

NonNegFloat = Annotated[float, Field(ge=0.0, strict=True, allow_inf_nan=False)]
UnitFloat = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
OpenUnitFloat = Annotated[float, Field(gt=0.0, lt=1.0, strict=True)]
Monitor = Annotated[str, Field(min_length=1, max_length=128)]
Mode = Literal["auto", "min", "max"]


def _named(value, aliases: dict | None = None, lower: bool = False):
    """`name`, `{name: {args}}` or `{type: name, ...}` -> `{type: name, ...}`, aliases resolved."""
    aliases = aliases or {}

    def canon(name):
        if not isinstance(name, str):
            return name
        name = name.lower() if lower else name
        return aliases.get(name, name)

    if isinstance(value, str):
        return {"type": canon(value)}
    if isinstance(value, dict):
        if "type" not in value and len(value) == 1:
            (name, args), = value.items()
            if isinstance(name, str) and (args is None or isinstance(args, dict)):
                return {"type": canon(name), **(args or {})}
        if "type" in value:
            return {**value, "type": canon(value["type"])}
    return value


# -- learning-rate schedules ------------------------------------------------------

class ExponentialDecay(Strict):
    """lr = initial_learning_rate * decay_rate ** (step / decay_steps) (floored when staircase)."""

    type: Literal["exponential_decay"] = "exponential_decay"
    initial_learning_rate: PosFloat
    decay_steps: PosInt
    decay_rate: PosFloat
    staircase: StrictBool = False


class StepDecay(Strict):
    """Piecewise constant (Keras PiecewiseConstantDecay): values[i] while step <= boundaries[i]."""

    type: Literal["step_decay"] = "step_decay"
    boundaries: list[NonNegInt] = Field(min_length=1)
    values: list[PosFloat] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"values needs one more entry than boundaries: got {len(self.boundaries)} "
                f"boundaries and {len(self.values)} values")
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError("boundaries must be strictly increasing")
        return self


class CosineDecay(Strict):
    """Keras 3 CosineDecay: optional linear warmup to warmup_target, then cosine decay to alpha * peak."""

    type: Literal["cosine_decay"] = "cosine_decay"
    initial_learning_rate: NonNegFloat
    decay_steps: PosInt
    alpha: UnitFloat = 0.0
    warmup_target: Optional[PosFloat] = None
    warmup_steps: NonNegInt = 0

    @model_validator(mode="after")
    def _warmup(self):
        if self.warmup_target is None and self.warmup_steps > 0:
            raise ValueError("warmup_steps needs a warmup_target (the learning rate to warm up to)")
        if self.warmup_target is None and self.initial_learning_rate == 0.0:
            raise ValueError("initial_learning_rate must be > 0 without a warmup_target")
        return self


Schedule = Annotated[Union[ExponentialDecay, StepDecay, CosineDecay], Field(discriminator="type")]


def _lr_kind(v):
    return "schedule" if isinstance(v, (dict, Strict)) else "constant"


LearningRate = Annotated[
    Union[Annotated[PosFloat, Tag("constant")], Annotated[Schedule, Tag("schedule")]],
    Discriminator(_lr_kind),
]


# -- optimizers ----------------------------------------------------------------------

class OptimizerArgs(Strict):
    learning_rate: LearningRate = 0.001
    clipnorm: Optional[PosFloat] = None  # per variable, as Keras
    clipvalue: Optional[PosFloat] = None

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _schedule_name(cls, v):
        return _named(v) if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _one_clip(self):
        if self.clipnorm is not None and self.clipvalue is not None:
            raise ValueError("set only one of clipnorm and clipvalue (as in Keras)")
        return self


class SGD(OptimizerArgs):
    type: Literal["sgd"] = "sgd"
    learning_rate: LearningRate = 0.01
    momentum: Fraction = 0.0
    nesterov: StrictBool = False


class RMSprop(OptimizerArgs):
    type: Literal["rmsprop"] = "rmsprop"
    rho: Fraction = 0.9
    momentum: Fraction = 0.0
    epsilon: PosFloat = 1e-7
    centered: StrictBool = False


class Adagrad(OptimizerArgs):
    type: Literal["adagrad"] = "adagrad"
    initial_accumulator_value: NonNegFloat = 0.1
    epsilon: PosFloat = 1e-7


class Adam(OptimizerArgs):
    type: Literal["adam"] = "adam"
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: PosFloat = 1e-7
    amsgrad: StrictBool = False


class AdamW(OptimizerArgs):
    type: Literal["adamw"] = "adamw"
    weight_decay: NonNegFloat = 0.004
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    epsilon: PosFloat = 1e-7
    amsgrad: StrictBool = False


OptimizerSpec = Annotated[Union[SGD, RMSprop, Adagrad, Adam, AdamW], Field(discriminator="type")]


# -- losses ----------------------------------------------------------------------------

class CategoricalCrossentropy(Strict):
    type: Literal["categorical_crossentropy"] = "categorical_crossentropy"
    from_logits: StrictBool = False
    label_smoothing: UnitFloat = 0.0


class SparseCategoricalCrossentropy(Strict):
    type: Literal["sparse_categorical_crossentropy"] = "sparse_categorical_crossentropy"
    from_logits: StrictBool = False


class BinaryCrossentropy(Strict):
    type: Literal["binary_crossentropy"] = "binary_crossentropy"
    from_logits: StrictBool = False
    label_smoothing: UnitFloat = 0.0


class MeanSquaredError(Strict):
    type: Literal["mean_squared_error"] = "mean_squared_error"


class MeanAbsoluteError(Strict):
    type: Literal["mean_absolute_error"] = "mean_absolute_error"


class Huber(Strict):
    type: Literal["huber"] = "huber"
    delta: PosFloat = 1.0


LossSpec = Annotated[
    Union[CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
          MeanSquaredError, MeanAbsoluteError, Huber],
    Field(discriminator="type"),
]
LOSS_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "huber_loss": "huber"}


# -- metrics ------------------------------------------------------------------------------

class SimpleMetric(Strict):
    """Metrics without arguments; the type is also the name shown in the logs."""

    type: Literal["accuracy", "binary_accuracy", "categorical_accuracy",
                  "sparse_categorical_accuracy", "mae", "mse", "rmse"]


class TopKAccuracy(Strict):
    type: Literal["top_k_accuracy"] = "top_k_accuracy"
    k: PosInt = 5


class PrecisionRecall(Strict):
    type: Literal["precision", "recall"]
    thresholds: UnitFloat = 0.5


class AUC(Strict):
    """Binary ROC AUC, Keras's 200-threshold approximation with trapezoid interpolation."""

    type: Literal["auc"] = "auc"
    num_thresholds: Annotated[StrictInt, Field(gt=1)] = 200


MetricSpec = Annotated[Union[SimpleMetric, TopKAccuracy, PrecisionRecall, AUC],
                       Field(discriminator="type")]
METRIC_ALIASES = {
    "acc": "accuracy", "mean_absolute_error": "mae", "mean_squared_error": "mse",
    "root_mean_squared_error": "rmse", "top_k_categorical_accuracy": "top_k_accuracy",
}


# -- callbacks: their models are imported when a spec names one ---------------------------

CALLBACK_NAMES = ("EarlyStopping", "Checkpoint", "ReduceLROnPlateau", "TerminateOnNaN", "CallbackSpec")


class _Callbacks:
    """`Annotated[object, _Callbacks()]`: the callback union (`callbacks.CallbackSpec`), its
    module imported when a schema holding it is built (TrainSpec's, or the JSON Schema)."""

    def __get_pydantic_core_schema__(self, source, handler):
        return handler.generate_schema(self.union())

    @staticmethod
    def union():
        from .callbacks import CallbackSpec

        return CallbackSpec


def __getattr__(name: str):
    if name in CALLBACK_NAMES:
        from . import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- the section ---------------------------------------------------------------------------

@functools.cache
def _by_output(key: str) -> TypeAdapter:
    """The validator of `train.loss` / `train.metrics` written as a mapping by output name."""
    return TypeAdapter(dict[Name, LossSpec] if key == "loss" else dict[Name, list[MetricSpec]])


def _is_loss(value) -> bool:
    """A single loss (`mse`, `{type: ...}`, `{huber: {delta: 2}}`) rather than a mapping by output."""
    if isinstance(value, (str, Strict)) or not isinstance(value, dict):
        return True
    if "type" in value:
        return True
    if len(value) == 1:
        (name, args), = value.items()
        return (name in _models_by_type(LossSpec) or name in LOSS_ALIASES) and (args is None or isinstance(args, dict))
    return False


class TrainSpec(Strict):
    """How to train: Keras's `compile` (optimizer, loss, metrics) and `fit` arguments.

    With several outputs, `loss`, `loss_weights` and `metrics` may be mappings by output
    name (Keras semantics): one loss applies to each output, the total loss is the
    weighted sum, and a metrics list applies to each output."""

    optimizer: OptimizerSpec = RMSprop.model_construct()  # Keras's default; unvalidated: no schema built
    loss: LossSpec  # or {output: loss} (see _loss; schema.py writes both forms)
    loss_weights: Optional[dict[Name, NonNegFloat]] = None
    metrics: list[MetricSpec] = []  # or {output: [metric, ...]}
    batch_size: PosInt = 32
    epochs: PosInt = 1
    shuffle: StrictBool = True
    callbacks: list[Annotated[object, _Callbacks()]] = []  # list[CallbackSpec]
    tensorboard: StrictBool = Field(True, description="write TensorBoard event files (every epoch's loss, "
                                    "metrics and learning rate, and the spec) into the run directory, "
                                    "when tensorboardX is installed; false turns them off")

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer(cls, v):
        return _named(v, lower=True)

    @field_validator("loss", mode="wrap")
    @classmethod
    def _loss(cls, v, handler):
        if not _is_loss(v):
            return _by_output("loss").validate_python({k: _named(x, LOSS_ALIASES) for k, x in v.items()})
        return handler(_named(v, LOSS_ALIASES))

    @field_validator("metrics", mode="wrap")
    @classmethod
    def _metrics(cls, v, handler):
        if isinstance(v, dict):
            return _by_output("metrics").validate_python(
                {k: [_named(m, METRIC_ALIASES) for m in (x if isinstance(x, list) else [x])] for k, x in v.items()})
        return handler([_named(m, METRIC_ALIASES) for m in v] if isinstance(v, list) else v)

    # -- by output ---------------------------------------------------------------------
    def loss_for(self, output: str):
        """The loss spec of one output (None when a mapping names it not)."""
        return self.loss.get(output) if isinstance(self.loss, dict) else self.loss

    def one_loss(self):
        """The loss of a model with one output, however written (a mapping names only it)."""
        return next(iter(self.loss.values())) if isinstance(self.loss, dict) else self.loss

    def weight_for(self, output: str) -> float:
        return 1.0 if self.loss_weights is None else float(self.loss_weights.get(output, 1.0))

    def metrics_for(self, output: str) -> list:
        return self.metrics.get(output, []) if isinstance(self.metrics, dict) else list(self.metrics)

    def check_outputs(self, outputs: list[str]) -> list[tuple]:
        """(path, message, hint) for each mapping key that is no output and each output
        without a loss."""
        problems = []
        for key, mapping in (("loss", self.loss), ("loss_weights", self.loss_weights),
                             ("metrics", self.metrics)):
            if not isinstance(mapping, dict):
                continue
            for name in mapping:
                if name not in outputs:
                    problems.append((("train", key, name), f"`train.{key}` names {name!r}, which is no "
                                     f"model output", f"outputs: {', '.join(outputs)}"))
        if isinstance(self.loss, dict):
            missing = [o for o in outputs if o not in self.loss]
            if missing:
                problems.append((("train", "loss"), f"output{'s' if len(missing) > 1 else ''} "
                                 f"{', '.join(repr(m) for m in missing)} {'have' if len(missing) > 1 else 'has'} "
                                 "no loss", "give every output a loss in `train.loss: {output: loss}`"))
        return problems

    @field_validator("callbacks", mode="before")
    @classmethod
    def _callbacks(cls, v):
        return [_named(c) for c in v] if isinstance(v, list) else v


# -- validating only the models a section names -------------------------------------------

FIT_ARGS = ("batch_size", "epochs", "shuffle", "tensorboard")
_NAMED = {"optimizer": ("OptimizerSpec", None, True), "loss": ("LossSpec", LOSS_ALIASES, False),
          "metrics": ("MetricSpec", METRIC_ALIASES, False), "callbacks": ("CallbackSpec", None, False)}


@functools.cache
def _models_by_type(union) -> dict:
    """`type` name -> model, for one of the discriminated unions above."""
    members = typing.get_args(typing.get_args(union)[0])
    return {name: m for m in members for name in typing.get_args(m.model_fields["type"].annotation)}


@functools.cache
def _fit_args() -> type[Strict]:
    return create_model("TrainSpec", __base__=Strict,
                        **{k: (TrainSpec.model_fields[k].annotation, TrainSpec.model_fields[k]) for k in FIT_ARGS})


class _Unnamed(Exception):
    pass


def _one(value, key):
    name, aliases, lower = _NAMED[key]
    value = _named(value, aliases, lower)
    union = globals().get(name) or __getattr__(name)  # CallbackSpec: imported now
    model = _models_by_type(union).get(value.get("type")) if isinstance(value, dict) else None
    if not isinstance(model, type):
        raise _Unnamed
    return model.model_validate(value)


def train_by_type(value):
    """A `train:` mapping validated by the models its optimizer, loss, metrics and callbacks
    name, building only those; None when it does not validate so (TrainSpec then reports,
    with its messages)."""
    if not isinstance(value, dict) or "loss" not in value or not set(value) <= set(TrainSpec.model_fields):
        return None
    if "loss_weights" in value or isinstance(value.get("metrics"), dict) or not _is_loss(value["loss"]):
        return None  # mappings by output: TrainSpec validates them
    try:
        fit = _fit_args().model_validate({k: value[k] for k in FIT_ARGS if k in value})
        fields = {k: getattr(fit, k) for k in FIT_ARGS if k in value}
        for key in ("optimizer", "loss"):
            if key in value:
                fields[key] = _one(value[key], key)
        for key in ("metrics", "callbacks"):
            if key in value:
                if not isinstance(value[key], list):
                    return None
                fields[key] = [_one(v, key) for v in value[key]]
    except (ValidationError, _Unnamed, TypeError):
        return None
    return TrainSpec.model_construct(_fields_set=set(value), **fields)
