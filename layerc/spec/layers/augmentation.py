"""Layer specs: Keras 3's image augmentation layers (random while training, fixed at inference).

Argument names, defaults and the accepted `factor` ranges are Keras 3's
(`keras.layers.RandomFlip`, ...; keras/src/layers/preprocessing/image_preprocessing/).
"""
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator

from .base import LayerSpec, NonNegInt, PosInt, Real

Factor = Union[Real, tuple[Real, Real]]
FillMode = Literal["reflect", "wrap", "constant", "nearest"]
Interpolation = Literal["bilinear", "nearest"]
Seed = Annotated[Optional[NonNegInt], Field(description="this layer's own seed (default: one drawn from the "
                                                         "spec's seed)")]
ValueRange = Annotated[tuple[Real, Real], Field(description="the range of the input's values, [low, high]; the "
                                                            "output is clipped to it")]
_FILL = "how points outside the input are filled: reflect (d c b a | a b c d), wrap, constant (fill_value), nearest"


def factor_bounds(value, low, high, low_open=False):
    """Keras's check of a zoom or translation factor: a number, or each of a pair, in [low, high]."""
    span = f"{'(' if low_open else '['}{low}, {high}]"
    for v in value if isinstance(value, tuple) else (value,):
        if v > high or v < low or (low_open and v == low):
            raise ValueError(f"must be {'a pair of numbers each' if isinstance(value, tuple) else 'a number'} in "
                             f"{span} (as in Keras), got {list(value) if isinstance(value, tuple) else value}")
    return value


class _Affine(LayerSpec):
    fill_mode: FillMode = Field("reflect", description=_FILL)
    interpolation: Interpolation = Field("bilinear", description="how pixels are sampled: bilinear or nearest")
    seed: Seed = None
    fill_value: Real = Field(0.0, description="the value outside the input for fill_mode: constant")


class RandomFlip(LayerSpec):
    """Keras `RandomFlip`: each image flipped with probability 1/2 (`horizontal_and_vertical`:
    one draw flips both axes, as Keras does)."""

    type: Literal["RandomFlip"] = "RandomFlip"
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = Field(
        "horizontal_and_vertical", description="horizontal (left-right), vertical (top-bottom) or both")
    seed: Seed = None


class RandomRotation(_Affine):
    """Keras `RandomRotation`: a random angle in [lower, upper] * 360 degrees, counter-clockwise."""

    type: Literal["RandomRotation"] = "RandomRotation"
    factor: Factor = Field(description="the angle range as a fraction of a full turn: f is [-f, f], "
                                       "[lower, upper] as given; positive turns counter-clockwise")

    @field_validator("factor")
    @classmethod
    def _factor(cls, v):
        return _pair_reaching(v, -1.0, 1.0)


class RandomZoom(_Affine):
    """Keras `RandomZoom`: positive factors zoom out, negative zoom in."""

    type: Literal["RandomZoom"] = "RandomZoom"
    height_factor: Factor = Field(description="the vertical zoom range as a fraction: f is [-f, f]; positive "
                                              "zooms out")
    width_factor: Optional[Factor] = Field(None, description="the horizontal zoom range (default: the "
                                                             "height's zoom, keeping the aspect ratio)")

    @field_validator("height_factor", "width_factor")
    @classmethod
    def _factors(cls, v):
        return v if v is None else factor_bounds(v, -1.0, 1.0, low_open=True)


class RandomTranslation(_Affine):
    """Keras `RandomTranslation`: shifts by a random fraction of the height and width."""

    type: Literal["RandomTranslation"] = "RandomTranslation"
    height_factor: Factor = Field(description="the vertical shift range as a fraction of the height: f is "
                                              "[-f, f]; positive shifts down")
    width_factor: Factor = Field(description="the horizontal shift range as a fraction of the width: f is "
                                             "[-f, f]; positive shifts right")

    @field_validator("height_factor", "width_factor")
    @classmethod
    def _factors(cls, v):
        return factor_bounds(v, -1.0, 1.0)


class RandomCrop(LayerSpec):
    """Keras `RandomCrop`: a random height x width window while training; at inference the
    largest centred window of that aspect ratio, resized to height x width."""

    type: Literal["RandomCrop"] = "RandomCrop"
    height: PosInt = Field(description="the output's height")
    width: PosInt = Field(description="the output's width")
    seed: Seed = None


class RandomContrast(LayerSpec):
    """Keras `RandomContrast`: (x - mean) * c + mean per image and channel, clipped to value_range."""

    type: Literal["RandomContrast"] = "RandomContrast"
    factor: Factor = Field(description="c is drawn in [1 - lower, 1 + upper]; a number f is Keras 3's "
                                       "[0, f], so c in [1, 1 + f]")
    value_range: ValueRange = (0.0, 255.0)
    seed: Seed = None

    @field_validator("factor")
    @classmethod
    def _factor(cls, v):
        return _pair_reaching(v, 0.0, 1.0)

    @field_validator("value_range")
    @classmethod
    def _range(cls, v):
        return _ordered(v)


class RandomBrightness(LayerSpec):
    """Keras `RandomBrightness`: adds d * (high - low) per image, clipped to value_range."""

    type: Literal["RandomBrightness"] = "RandomBrightness"
    factor: Factor = Field(description="d is drawn in [lower, upper]: f is [-f, f]; -1 is black, 1 white")
    value_range: ValueRange = (0.0, 255.0)
    seed: Seed = None

    @field_validator("factor")
    @classmethod
    def _factor(cls, v):
        return _pair_reaching(v, -1.0, 1.0)

    @field_validator("value_range")
    @classmethod
    def _range(cls, v):
        return _ordered(v)


def _ordered(value_range):
    if not value_range[0] < value_range[1]:
        raise ValueError(f"must be [low, high] with low < high, got {list(value_range)}")
    return value_range


def _pair_reaching(value, low, high):
    """Keras's base-layer check: a number in [low, high], or a pair with lower <= high and upper >= low."""
    if isinstance(value, tuple):
        if value[0] > high or value[1] < low:
            raise ValueError(f"must be a number in [{low}, {high}] or a pair [lower, upper] with lower <= {high} "
                             f"and upper >= {low} (as in Keras), got {list(value)}")
        return value
    return factor_bounds(value, low, high)


def factor_range(value, low):
    """(lower, upper) of a factor as Keras uses it: a number f is (max(-|f|, low), |f|), a pair sorted."""
    if isinstance(value, tuple):
        return tuple(sorted(value))
    f = abs(value)
    return (max(-f, low), f)
