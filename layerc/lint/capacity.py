"""Rules on the model's size against its data."""
from __future__ import annotations

from .registry import rule

RATIO = 100
# What the built-in datasets hold, read without loading them (the data package needs
# numpy): training-file samples, and for a series its rows, window and held-out test steps.
# tests/lint/test_rules.py checks these against layerc.data.builtin.BUILTINS.
SAMPLES = {"mnist": 60_000, "sms_spam": 5_574, "iris": 150, "diabetes": 442}
SERIES = {"melbourne_temperatures": (3_650, 30, 730), "airline_passengers": (144, 12, 24),
          "sunspots": (2_820, 60, 264)}
TEST_SPLIT = {"sms_spam": 0.2, "iris": 0.2, "diabetes": 0.2}


def training_samples(data) -> int | None:
    """Roughly how many samples a built-in dataset trains on with this spec's settings, or None."""
    name = getattr(data, "dataset", None)
    if name in SERIES:
        rows, window, test = SERIES[name]
        window = data.window or window
        steps = max(rows - (window - 1 + (data.horizon or 1)), 0)
        n = steps // (data.stride or 1)
    elif name in SAMPLES:
        n, test = SAMPLES[name], TEST_SPLIT.get(name)
    else:
        return None
    test = data.test_split if data.test_split is not None else test
    if test is not None and data.test is None:
        n -= test if isinstance(test, int) else round(test * n)
    n = round(n * (1 - data.validation_split))
    return max(min(n, data.limit or n), 0)


@rule("LC401", "many-more-parameters-than-samples",
      "over 100 trainable parameters per training sample (a note)", severity="note")
def many_parameters(ctx):
    """A model with far more trainable parameters than training samples (over 100 per sample
    here) can memorise the training set; validation loss then rises while training loss
    falls. It is a note, not a warning: large models do generalise with enough regularisation,
    augmentation or early stopping, and `validate --strict` does not fail on notes. Embedding
    tables are left out of the count: their size follows the vocabulary, and each row is trained
    only by the samples holding its token. The sample count comes from the built-in datasets'
    known sizes (after `test_split`, `validation_split` and `limit`); files are not read.

    Fix: fewer or narrower layers, pooling before Dense layers, Dropout, `early_stopping`, or
    more data."""
    n = training_samples(ctx.spec.data) if ctx.spec.data is not None else None
    if not n:
        return
    params = sum(node.n_trainable for node in ctx.graph.nodes if ctx.type(node) != "Embedding")
    if params > RATIO * n:
        yield (ctx.data_path(), False,
               f"{params:,} trainable parameters for about {n:,} training samples "
               f"({params // n:,} per sample): the model can memorise its data; watch the validation loss")
