"""What `layerc summary` reports, as plain data: Keras's summary plus MACs and memory."""
from __future__ import annotations

from .core.base import elements

_DTYPE_BYTES = {"float32": 4, "float64": 8, "int32": 4}


def readable_size(n_bytes: float) -> str:
    """Keras's `readable_memory_size`: 476.29 KB."""
    for unit in ["B", "KB", "MB", "GB", "TB"]:
        if n_bytes / 1024 < 1:
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.2f} PB"


def batch_shape(shape) -> list:
    """Keras's shape with its batch dimension: [None, 26, 26, 32] (JSON null for None)."""
    return [None, *shape]


def summarize(model, batch_size: int | None = None) -> dict:
    """Rows and totals of a model summary (JSON-serialisable, nothing allocated)."""
    spec, graph = model.spec, model.graph
    if batch_size is None:
        batch_size = spec.train.batch_size if spec.train else 32
    item = _DTYPE_BYTES[spec.dtype]
    rows = []
    if not graph.sequential:
        for name, inp in graph.inputs.items():
            rows.append(_row(name, "InputLayer", tuple(inp.shape), 0, 0, []))
    for node in model.weight_nodes():
        rows.append(_row(node.name, node.layer.spec.type, node.output_shape, node.n_params,
                         node.macs, [] if graph.sequential else node.inputs))
    total, trainable = model.count_params(), model.count_trainable()
    activations = sum(elements(n.output_shape) for n in model.nodes) * batch_size * item
    activations += sum(elements(tuple(i.shape)) * _DTYPE_BYTES[i.dtype] for i in graph.inputs.values()) * batch_size
    return {
        "name": model.name,
        "sequential": graph.sequential,
        "layers": rows,
        "inputs": {n: {"shape": batch_shape(tuple(i.shape)), "dtype": i.dtype} for n, i in graph.inputs.items()},
        "outputs": list(graph.outputs),
        "total_params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
        "total_bytes": total * item,
        "trainable_bytes": trainable * item,
        "non_trainable_bytes": (total - trainable) * item,
        "macs_per_sample": sum(n.macs for n in model.nodes),
        "batch_size": batch_size,
        "activation_bytes": activations,
    }


def _row(name, type_name, shape, params, macs, inputs):
    return {"name": name, "type": type_name, "output_shape": batch_shape(shape), "params": params,
            "macs": macs, "connected_to": [f"{s}[0][0]" for s in inputs]}
