"""The `train.callbacks` models, imported when a spec names a callback (or the union is built)."""

from typing import Annotated, Literal, Union

from pydantic import Field, StrictBool

from ..layers import NonNegInt, Strict
from . import Mode, Monitor, NonNegFloat, OpenUnitFloat


class EarlyStopping(Strict):
    type: Literal["early_stopping"] = "early_stopping"
    monitor: Monitor = "val_loss"
    patience: NonNegInt = 0
    min_delta: NonNegFloat = 0.0
    mode: Mode = "auto"
    restore_best_weights: StrictBool = False


class Checkpoint(Strict):
    """Save the best weights (by `monitor`) as best.npz in the run directory; the
    checkpoint of the last epoch is always kept as checkpoint.npz."""

    type: Literal["checkpoint"] = "checkpoint"
    monitor: Monitor = "val_loss"
    save_best_only: StrictBool = False
    mode: Mode = "auto"


class ReduceLROnPlateau(Strict):
    type: Literal["reduce_lr_on_plateau"] = "reduce_lr_on_plateau"
    monitor: Monitor = "val_loss"
    factor: OpenUnitFloat = 0.1
    patience: NonNegInt = 10
    min_delta: NonNegFloat = 1e-4
    mode: Mode = "auto"
    cooldown: NonNegInt = 0
    min_lr: NonNegFloat = 0.0


class TerminateOnNaN(Strict):
    type: Literal["terminate_on_nan"] = "terminate_on_nan"


CallbackSpec = Annotated[Union[EarlyStopping, Checkpoint, ReduceLROnPlateau, TerminateOnNaN],
                         Field(discriminator="type")]
