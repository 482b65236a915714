"""The shipped datasets, each a file-format spec with its standard preprocessing.

`expand(spec)` turns `dataset: name` (plus any overrides given beside it) into the
equivalent `format:` spec, so the built-ins go through the same loaders as user files.
"""
from __future__ import annotations

from pathlib import Path

from ..spec.data import BuiltinData, parse_data_spec
from . import paths
from .errors import DataError
from .paths import cache_dir, candidates

MNIST_FILES = {  # name: md5 of the canonical gzip
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

BUILTINS: dict[str, dict] = {
    "mnist": {
        "format": "idx",
        "train": {"x": "mnist/train-images-idx3-ubyte.gz", "y": "mnist/train-labels-idx1-ubyte.gz"},
        "test": {"x": "mnist/t10k-images-idx3-ubyte.gz", "y": "mnist/t10k-labels-idx1-ubyte.gz"},
        "rescale": 1 / 255,
    },
    "sms_spam": {
        "format": "text",
        "train": "sms_spam/SMSSpamCollection",
        "labels": ["ham", "spam"],  # ham = 0, spam = 1
        "test_split": 0.2,  # stratified, seeded
        "vocab_size": 10000,
    },
    "melbourne_temperatures": {  # 30 days -> the next day; 1989-1990 held out
        "format": "timeseries",
        "train": "daily-min-temperatures/daily-min-temperatures.csv",
        "column": "Temp", "window": 30, "test_split": 730, "standardize": True,
    },
    "airline_passengers": {  # 12 months -> the next month; 1959-1960 held out
        "format": "timeseries",
        "train": "airline-passengers/airline-passengers.csv",
        "column": "Passengers", "window": 12, "test_split": 24, "standardize": True,
    },
    "sunspots": {  # 5 years of months -> the next month; the last two 11-year cycles held out
        "format": "timeseries",
        "train": "monthly-sunspots/monthly-sunspots.csv",
        "column": "Sunspots", "window": 60, "test_split": 264, "standardize": True,
    },
    "iris": {  # 4 measurements -> one of 3 species; a stratified, seeded 20% held out
        "format": "csv",
        "train": "iris/iris.csv",
        "target": "species", "labels": ["setosa", "versicolor", "virginica"],
        "test_split": 0.2, "standardize": True,
    },
    "diabetes": {  # 10 baseline variables -> disease progression a year later; 20% held out
        "format": "csv",
        "train": "diabetes/diabetes.csv",
        "target": "progression", "test_split": 0.2, "standardize": True,
    },
}

# the image built-ins' sample shapes, and class names where the label files hold only ids
# (sms_spam names its `labels`): what `validate` checks a spec against without opening a file
SAMPLE_SHAPES = {"mnist": (28, 28)}
CLASS_NAMES = {"mnist": [str(d) for d in range(10)]}


def expand(spec: BuiltinData):
    """The file-format spec of a built-in dataset, with the overrides given in `spec`."""
    base = dict(BUILTINS[spec.dataset])
    given = spec.model_dump(exclude_unset=True, exclude={"dataset"})
    base.update({k: v for k, v in given.items() if v is not None})
    return parse_data_spec(base)


def not_found(name: str, error: DataError) -> DataError:
    """The error for a built-in dataset whose files are in no data folder."""
    return DataError(f"built-in dataset {name!r} not found: {error}. The layerc package ships it in "
                     f"{paths.SHIPPED}; reinstall layerc, or put the files in a folder of $LAYERC_DATA")


def ensure_mnist(spec_dir: Path | None, *, mirrors=None, timeout: float = 60.0) -> None:
    """Download any MNIST file found in no search folder into `cache_dir()`, MD5-checked."""
    from . import download as _download  # urllib: only when a file is missing

    mirrors = MNIST_MIRRORS if mirrors is None else mirrors
    for name, md5 in MNIST_FILES.items():
        if any(p.is_file() for p in candidates(f"mnist/{name}", spec_dir)):
            continue
        dest = cache_dir() / "mnist" / name
        errors = []
        for base in mirrors:
            try:
                _download.download(base + name, dest, md5, timeout=timeout)
                break
            except DataError as e:
                errors.append(str(e))
        else:
            raise DataError(f"MNIST file {name} is in no data folder and could not be downloaded: "
                            + "; ".join(errors))
