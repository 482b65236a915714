"""Data for a model with several inputs or outputs: an .npz with one array per model input
and per output, named after them (`x_keys`/`y_keys` where the file's names differ), or a CSV
whose `features`/`target` mappings give each input's and output's columns.

Splits, limit and shuffling are the single-array loader's (same seeds, stratified on the
first output's labels); `rescale` and `standardize` apply to every float input, each
standardised with its own training statistics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import arrays
from .csv import column_index, numbers, read_table
from ..spec.diagnostics import did_you_mean
from .errors import DataError, Located
from .paths import find
from .peek import check_fit
from .prepare import apply_scaling, check_finite, choose_task, fit_standardize, fit_to_input, make_targets


@dataclass
class Arrays:
    """One split's arrays: xs in model input order, ys in output order (the loader's Part form)."""

    xs: list
    ys: list
    files: list
    meta: dict = field(default_factory=dict)  # a CSV's feature column names by input

    @property
    def y(self):  # what the splits stratify on
        return self.ys[0]

    def __len__(self) -> int:
        return len(self.xs[0])

    def take(self, index) -> "Arrays":
        return Arrays([a[index] for a in self.xs], [a[index] for a in self.ys], self.files, self.meta)


def keys(spec, inputs, outputs) -> tuple[dict, dict]:
    """{model input: array name}, {model output: array name}."""
    return ({n: (getattr(spec, "x_keys", None) or {}).get(n, n) for n in inputs},
            {n: (getattr(spec, "y_keys", None) or {}).get(n, n) for n in outputs})


def read(spec, src, spec_dir, limit, split: str, model) -> Arrays:
    """One source's arrays, checked for presence, numbers and equal sample counts."""
    if spec.format == "csv":
        return read_csv(spec, src, spec_dir, limit, split, model)
    inputs, outputs = model.input_names, model.output_names
    path = find(src.path, spec_dir)
    x_keys, y_keys = keys(spec, inputs, outputs)
    labels = {k: f"input {n!r}" for n, k in x_keys.items()}
    labels.update({k: f"output {n!r}" for n, k in y_keys.items()})
    names = [*x_keys.values(), *y_keys.values()]
    got = dict(zip(names, arrays.read_npz_arrays(path, names, limit, labels)))
    counts = {k: len(a) for k, a in got.items()}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{k} {c}" for k, c in counts.items())
        raise DataError(f"{path}: the arrays hold different numbers of samples ({shown})")
    if not counts[names[0]]:
        raise DataError(f"{split} data ({path}) holds no samples")
    for k, a in got.items():
        check_finite(a, f"{split} {labels[k]} ({path}[{k}])")
    return Arrays([got[k] for k in x_keys.values()], [got[k] for k in y_keys.values()], [str(path)])


def columns(spec, inputs, outputs) -> tuple[dict, dict]:
    """{model input: its feature columns}, {model output: its target columns} as given (the
    features None when they are every column but the targets)."""
    def by_name(given, names):
        if isinstance(given, dict):
            return {n: given[n] if isinstance(given[n], list) else [given[n]] for n in names}
        return {names[0]: given if isinstance(given, list) or given is None else [given]}

    return by_name(spec.features, inputs), by_name(spec.target, outputs)


def _where(spec, key: str, name: str, j: int) -> tuple:
    """The `data:` path of the j-th column given for input or output `name` under `key`."""
    given = getattr(spec, key)
    path = ("data", key)
    if isinstance(given, dict):
        path, given = path + (name,), given[name]
    return path + ((j,) if isinstance(given, list) else ())


def csv_columns(spec, table, model) -> tuple[dict, dict]:
    """{input: column indices}, {output: column indices} of a CSV table (its header and rows).

    Raises Located at the `data:` key that names a column the file lacks (with the nearest
    name), a column taken twice, or columns that do not fit their input's shape."""
    inputs, outputs = model.input_names, model.output_names
    features, targets = columns(spec, inputs, outputs)
    taken = {}  # column index: who takes it

    def index(key, name, cols, what):
        out = []
        for j, col in enumerate(cols):
            where = _where(spec, key, name, j)
            try:
                c = column_index(table, col, f"{what} {name!r} {'feature' if key == 'features' else 'target'}")
            except DataError as e:
                hint = did_you_mean(col, table.names or [])
                raise Located(where, f"{e}" + (f"; {hint}" if hint else "")) from None
            who = f"{what} {name!r}"
            if c in taken:
                by = f"by {who}" if taken[c] == who else f"by {taken[c]} and by {who}"
                raise Located(where, f"{table.path}: column {table.name(c)} is used twice {by} "
                                     "(each column feeds one input or output)")
            taken[c] = who
            out.append(c)
        return out

    f_cols = {n: index("features", n, c, "input") for n, c in features.items() if c is not None}
    t_cols = {n: index("target", n, c, "output") for n, c in targets.items()}
    for n in inputs:
        if n not in f_cols:  # one input: every column but the targets
            f_cols[n] = [c for c in range(table.width) if c not in taken]
            if not f_cols[n]:
                raise Located(("data", "target"), f"{table.path}: no feature columns are left beside the target")
    for name, shape in zip(inputs, model.input_shapes):
        try:
            check_fit((len(f_cols[name]),), shape, f"the columns of input {name!r}")
        except DataError as e:
            raise Located(("data", "features") + ((name,) if isinstance(spec.features, dict) else ()),
                          f"{table.path}: {e}") from None
    return f_cols, t_cols


def read_csv(spec, src, spec_dir, limit, split: str, model) -> Arrays:
    """One CSV source's columns for each input and output (the single-input reader's parsing:
    numbers, missing cells, class-name targets), columns located at their `data:` key."""
    from .sources import _csv_targets

    path = find(src.path, spec_dir)
    table = read_table(path, spec.header, spec.delimiter, limit)
    f_cols, t_cols = csv_columns(spec, table, model)
    xs, complete = [], np.ones(len(table.rows), bool)
    inputs, outputs = model.input_names, model.output_names
    for n in inputs:
        x, ok = numbers(table, f_cols[n], spec.missing, spec.fill_value)
        xs.append(x)
        complete &= ok
    ys = []
    for n in outputs:
        y = _csv_targets(spec, table, t_cols[n])
        if isinstance(y, np.ndarray):
            complete &= ~np.isnan(y).any(axis=1)
            y = y[:, 0] if len(t_cols[n]) == 1 else y
        else:
            complete &= np.array([v != "" for v in y])
        ys.append(y)
    if spec.missing == "drop":
        keep = np.flatnonzero(complete)
        xs = [x[keep] for x in xs]
        ys = [y[keep] if isinstance(y, np.ndarray) else [y[i] for i in keep] for y in ys]
    elif not complete.all():
        r = int(np.flatnonzero(~complete)[0])
        raise DataError(f"{path}: line {table.lines[r]}: missing target value (set `missing: drop` to skip such rows)")
    if not len(xs[0]):
        raise DataError(f"{split} data ({path}) holds no samples")
    names = {n: [table.names[c] if table.names else c for c in f_cols[n]] for n in inputs}
    return Arrays(xs, ys, [str(path)], {"columns": names})


def _class_names(spec, parts, outputs) -> dict:
    """{output: class names} for outputs whose CSV labels are words (each part's labels turned
    into class ids in place), as the single-output loader does."""
    from types import SimpleNamespace

    from .loader import _label_names

    if spec.format != "csv":
        return {}
    if spec.labels is not None and len(outputs) > 1:
        raise Located(("data", "labels"), "`labels` names the classes of a model with one output")
    out = {}
    for i, name in enumerate(outputs):
        shim = {k: SimpleNamespace(y=p.ys[i], files=p.files) for k, p in parts.items()}
        names = _label_names(spec, shim)
        for k, p in parts.items():
            p.ys[i] = shim[k].y
        if names is not None:
            out[name] = names
    return out


def load(spec, spec_dir, model, losses: dict, seed: int, dtype: str, split):
    """(parts by split name, fitted state, info); `split` is the loader's `_split`."""
    inputs, outputs = model.input_names, model.output_names
    parts = {"train": read(spec, spec.train, spec_dir, None if spec.test_split is not None else spec.limit,
                           "train", model)}
    for key in ("validation", "test"):
        if getattr(spec, key) is not None:
            parts[key] = read(spec, getattr(spec, key), spec_dir, None, key, model)
    shapes = dict(zip(outputs, model.output_shapes))
    label_names = _class_names(spec, parts, outputs)
    tasks = [choose_task(losses[n], shapes[n], np.asarray(parts["train"].ys[i]), labelled=n in label_names,
                         one_hot=spec.one_hot) for i, n in enumerate(outputs)]
    csv_names = parts["train"].meta.get("columns")  # a CSV's, by input
    parts = split(spec, parts, tasks[0], seed)
    x_keys, y_keys = keys(spec, inputs, outputs)
    fitted_inputs = {}
    for i, (name, shape) in enumerate(zip(inputs, model.input_shapes)):
        ints = model.graph.inputs[name].dtype == "int32"
        stats = None
        if not ints:
            train = apply_scaling(parts["train"].xs[i], spec.rescale, None, dtype)
            stats = fit_standardize(train, spec.standardize)
        for key, part in parts.items():
            what = f"{key} input {name!r} ({part.files[0]}[{x_keys[name]}])"
            x = part.xs[i]
            if ints:
                if x.dtype.kind == "f" and not np.all(np.mod(x, 1) == 0):
                    raise DataError(f"{what}: the input takes integer ids; the array holds fractions")
                x = x.astype(np.int32)
            else:
                x = apply_scaling(x, spec.rescale, stats, dtype)
            part.xs[i] = fit_to_input(x, shape, what)
        fitted_inputs[name] = {"key": x_keys[name], "standardize": stats,
                               "shape": [None if d is None else int(d) for d in shape]}
        if csv_names:
            fitted_inputs[name]["columns"] = csv_names[name]
    for i, (name, task) in enumerate(zip(outputs, tasks)):
        for key, part in parts.items():
            part.ys[i] = make_targets(np.asarray(part.ys[i]), task, shapes[name],
                                      f"{key} output {name!r} ({part.files[0]}[{y_keys[name]}])", dtype)
    fitted = {"format": spec.format, "task": tasks[0] if len(outputs) == 1 else None,
              "label_names": label_names.get(outputs[0]) if len(outputs) == 1 else None,
              "rescale": spec.rescale, "inputs": fitted_inputs,
              "outputs": {n: {"key": y_keys[n], "task": t, "label_names": label_names.get(n)}
                          for n, t in zip(outputs, tasks)}}
    if csv_names:  # predict reads a CSV's columns as the training file's
        fitted["csv"] = {"header": spec.header, "delimiter": spec.delimiter, "missing": spec.missing,
                         "fill_value": spec.fill_value}
    info = {"task": tasks[0], "label_names": fitted["label_names"], "files": {k: p.files for k, p in parts.items()},
            "num_classes": None}
    return parts, fitted, info


def pair(part: Arrays | None):
    """(x, y) as the trainer takes them: lists with several inputs/outputs, else one array."""
    if part is None:
        return None
    return (part.xs if len(part.xs) > 1 else part.xs[0], part.ys if len(part.ys) > 1 else part.ys[0])


def prepare(raw: dict, fitted: dict, model, what: str) -> list:
    """Model inputs from an .npz's arrays by name, prepared as the training data was."""
    out = []
    for name, shape in zip(model.input_names, model.input_shapes):
        state = (fitted.get("inputs") or {}).get(name, {})
        key = state.get("key", name)
        if key not in raw:
            raise DataError(f"{what}: has no array {key!r} for input {name!r} (it has: {', '.join(raw) or 'none'})")
        x = np.asarray(raw[key])
        if model.graph.inputs[name].dtype == "int32":
            x = x.astype(np.int32)
        else:
            check_finite(x, f"{what}[{key}]")
            x = apply_scaling(x, fitted.get("rescale"), state.get("standardize"), model.spec.dtype)
        out.append(fit_to_input(x, shape, f"{what}[{key}] for input {name!r}"))
    counts = {len(a) for a in out}
    if len(counts) > 1:
        raise DataError(f"{what}: the input arrays hold different numbers of samples")
    return out


def read_inputs(path, data: bytes | None = None, fitted: dict | None = None) -> dict:
    """Every array of an .npz (a file, or the bytes of standard input), by name; for a model
    trained from a CSV, a CSV's feature columns of each input too (`csv_inputs`)."""
    import io
    import zipfile
    from pathlib import Path

    name = Path("standard input" if data is not None else path)
    if data is None:
        if not name.is_file():
            raise DataError(f"input file {name} not found")
        data = name.read_bytes()
    if not data.startswith(b"PK"):
        if (fitted or {}).get("csv"):
            return csv_inputs(data, name, fitted)
        if str(name) != "standard input":
            arrays.sniff(name)
        raise DataError(f"{name}: a model with several inputs reads an .npz with one array per input")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: arrays._numeric(z[k], name, f"[{k}]") for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise arrays._refuse(name, e) from None


def csv_inputs(data: bytes, name, fitted: dict) -> dict:
    """{input's key: its feature columns} from CSV text, picked as in the training file: by the
    names on its first line (a header is needed), or by position when the training file had none.

    Shapes: -> {key: (rows, columns) float64}."""
    import io

    from .csv import parse_table
    from .inputs import _number

    cfg = fitted["csv"]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{name}: is not UTF-8 text") from None
    table = parse_table(io.StringIO(text, newline=""), name, cfg["header"], cfg["delimiter"])
    wanted = {n: s["columns"] for n, s in fitted["inputs"].items()}
    if cfg["header"]:
        lacking = [(c, n) for n, cols in wanted.items() for c in cols if c not in table.names]
        if lacking and any(_number(c) for c in table.names):
            raise DataError(f"{name}: its first line is data, not a header; the model reads its inputs' "
                            f"columns by name ({', '.join(c for cols in wanted.values() for c in cols)})")
        if lacking:
            listed = ", ".join(f"{c!r} (input {n!r})" for c, n in lacking)
            hint = did_you_mean(lacking[0][0], table.names)
            raise DataError(f"{name}: has no column{'s' if len(lacking) > 1 else ''} {listed}; "
                            f"its columns: {', '.join(table.names)}" + (f"; {hint}" if hint else ""))
        index = {c: table.names.index(c) for cols in wanted.values() for c in cols}
    else:
        index = {c: c for cols in wanted.values() for c in cols}
        if max(index) >= table.width:
            raise DataError(f"{name}: rows have {table.width} cells; the training file's had column {max(index)}")
    missing = "error" if cfg["missing"] == "drop" else cfg["missing"]
    return {fitted["inputs"][n].get("key", n): numbers(table, [index[c] for c in cols], missing, cfg["fill_value"])[0]
            for n, cols in wanted.items()}
