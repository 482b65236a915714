"""Keras 3 `.keras` files in and out: `save_keras(model, path)`, `import_keras(path)`.

The files are read and written with zipfile and h5py (the `[keras]` extra), never by
importing Keras: keras_export writes, keras_archive reads untrusted archives, keras_import
turns a Keras config into a spec, keras_config holds what both directions share.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .keras_config import KerasError, weight_paths

INSTALL = 'reading and writing Keras files needs h5py: pip install "layerc[keras]"'


def need_h5py() -> None:
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise KerasError(INSTALL) from None


def save_keras(model, path) -> None:
    """Write a layerc Model as a Keras 3 `.keras` file (see keras_export.save_keras)."""
    need_h5py()
    from .keras_export import save_keras as save

    save(model, path)


@dataclass
class Imported:
    """An imported Keras model: the spec (validated), its YAML text, weights and notes."""

    spec: object
    model: object
    text: str
    weights: dict
    notes: list = field(default_factory=list)


def import_keras(path, weights=None):
    """A `.keras` file (or a config `.json`, with `weights` a `.weights.h5`) as
    `(spec, weights)`: a validated layerc Spec and {'layer/weight': array} (empty when a
    config comes without weights). Raises KerasError."""
    result = read_model(path, weights)
    return result.spec, result.weights


def read_model(path, weights=None, spec_file: str = "spec.yaml") -> Imported:
    """The whole import (see import_keras), with the spec text and the notes."""
    from .keras_archive import H5Weights, read_keras, read_weights_file
    from .keras_import import translate

    path = Path(path)
    if path.suffix != ".json" or weights is not None:
        need_h5py()
    config, meta, h5 = read_keras(path)
    if weights is not None:
        h5 = read_weights_file(weights)
    source = Path(weights) if weights is not None else path
    try:
        tr = translate(config)
    except (AttributeError, TypeError, KeyError, IndexError) as e:  # a config of the wrong shape somewhere
        raise KerasError(f"{path}: the config is not a Keras 3 model config ({type(e).__name__}: {e})") from None
    notes = list(tr.notes)
    text = render(tr, path, meta, notes)
    spec, model = _compile(text, spec_file)
    arrays = {}
    if h5 is not None:
        store = H5Weights(h5, source)
        try:
            arrays = _read_weights(store, model, tr, notes)
        finally:
            store.close()
        text = render(tr, path, meta, notes)
    return Imported(spec, model, text, arrays, notes)


def import_to_dir(path, output, weights=None) -> Imported:
    """Write DIR/spec.yaml and DIR/weights.npz (when there are weights); nothing is written
    unless the whole model imports."""
    from ..runs import atomic_write, save_arrays

    output = Path(output)
    result = read_model(path, weights, str(output / "spec.yaml"))
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KerasError(f"{output}: cannot create the output directory ({e.strerror})") from None
    atomic_write(output / "spec.yaml", result.text.encode())
    if result.weights:
        save_arrays(output / "weights.npz", result.weights)
    return result


def _compile(text: str, file: str):
    from .. import build
    from ..spec import SpecError, parse_spec

    try:
        spec = parse_spec(text, file)
        return spec, build(spec)
    except SpecError as e:
        raise KerasError("the imported spec does not validate:\n  "
                         + "\n  ".join(d.format() for d in e.diagnostics)) from None


def _read_weights(store, model, tr, notes) -> dict:
    """{'layer/weight': array} from the h5, each dataset's shape checked before it is read."""
    import numpy as np

    dtype = np.dtype(model.spec.dtype)
    arrays = {}
    for node in model.weight_nodes():
        ws = node.layer.weight_specs(node.input_shape)
        if not ws and node.name not in tr.groups:
            continue  # a layer made from an op (x + 3.0 as a Rescaling): Keras saves nothing for it
        base = tr.groups[node.name]
        owner = store.attr_name(f"{base}/vars")
        if owner is not None and owner != tr.renamed.get(node.name, node.name):
            raise KerasError(f"{store.source}: the weights do not fit the config: {base} holds layer "
                             f"{owner!r}, the config puts {node.name!r} there")
        paths = weight_paths(node.layer.spec, [w.name for w in ws])
        for sub in {p.rsplit("/", 1)[0] for p in paths}:
            want = sum(p.startswith(sub + "/") for p in paths)
            have = store.count(f"{base}/{sub}")
            if have != want:
                raise KerasError(f"{store.source}: {node.layer.spec.type} '{node.name}' has {have} weight arrays "
                                 f"in {base}/{sub}, the config needs {want}")
        counted = node.layer.spec.type == "Normalization"  # its count is an integer
        for w, p in zip(ws, paths):
            swap = node.name in tr.swapped and len(w.shape) == 4
            shape = (*w.shape[:2], w.shape[3], w.shape[2]) if swap else w.shape
            a = store.array(f"{base}/{p}", shape, f"{node.name} {w.name}",
                            "fiu" if counted and w.name == "count" else "f")
            arrays[f"{node.name}/{w.name}"] = (a.transpose(0, 1, 3, 2) if swap else a).astype(dtype, copy=False)
        if counted and f"{node.name}/count" in arrays:
            count = arrays[f"{node.name}/count"]  # Keras's adapt leaves it 0: the file's statistics
            count[...] = max(float(count), 1.0)   # are the layer's, not to be adapted again
    if store.has("optimizer"):
        notes.append("weights: the optimizer's state in the file is not imported (training starts afresh)")
    for _, name in tr.keras_layers:
        if name not in {n.name for n in model.nodes} and store.count(f"{tr.groups[name]}/vars"):
            notes.append(f"weights: layer {name!r}'s arrays are not imported")
    return arrays


# -- the spec as YAML ---------------------------------------------------------------------

def render(tr, path: Path, meta: dict, notes: list) -> str:
    """The spec data as readable YAML: one line per layer, a header saying where it came from."""
    version = meta.get("keras_version") if isinstance(meta.get("keras_version"), str) else None
    lines = [f"# Imported from {path.name} by `layerc import` on {time.strftime('%Y-%m-%d')}: a Keras"
             f"{' ' + version if version else ''} {tr.kind} model.",
             "# Keras's default arguments are left out; layer names are the Keras model's."]
    lines += [f"# Note: {n}" for n in notes]
    data = tr.data
    for key in ("layerc", "name", "dtype"):
        if key in data:
            lines.append(f"{key}: {_flow(data[key])}")
    if "input" in data:
        lines.append(f"input: {_flow(data['input'])}")
    else:
        lines.append("inputs:")
        lines += [f"  {k}: {_flow(v)}" for k, v in data["inputs"].items()]
    lines.append("layers:")
    for layer in data["layers"]:
        (t, args), = layer.items()
        lines.append(f"  - {t}: {_flow(args)}" if args else f"  - {t}")
    if "outputs" in data:
        lines.append(f"outputs: {_flow(data['outputs'])}")
    if "train" in data:
        lines.append("train:")
        lines += [f"  {k}: {_flow(v)}" for k, v in data["train"].items()]
    return "\n".join(lines) + "\n"


def _flow(value) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


__all__ = ["KerasError", "Imported", "import_keras", "import_to_dir", "read_model", "save_keras"]
