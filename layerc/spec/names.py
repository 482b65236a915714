"""Keras's default layer names (`dense`, `dense_1`, ...), from the layers as written."""
from __future__ import annotations

import re


def snake_case(type_name: str) -> str:
    """Keras's default layer name for a class name: Conv2D -> conv2d, SimpleRNN -> simple_rnn."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def default_names(layers: list[tuple[str, str | None]], input_names) -> list[str]:
    """Each layer's name from (type, name) pairs: its own, or Keras-style `conv2d`, `conv2d_1`, ..."""
    taken = {name for _, name in layers if name} | set(input_names)
    counts: dict[str, int] = {}
    names = []
    for type_name, name in layers:
        if name:
            names.append(name)
            continue
        base = snake_case(type_name)
        while True:
            n = counts.get(base, 0)
            counts[base] = n + 1
            candidate = base if n == 0 else f"{base}_{n}"
            if candidate not in taken:
                break
        taken.add(candidate)
        names.append(candidate)
    return names


def written_names(data: dict) -> list[str]:
    """Layer names of a spec as loaded from YAML, before validation (unknown forms: '')."""
    pairs = []
    for item in data.get("layers") or []:
        if isinstance(item, str):
            pairs.append((item, None))
        elif isinstance(item, dict) and "type" in item:
            pairs.append((str(item["type"]), item.get("name")))
        elif isinstance(item, dict) and len(item) == 1:
            (type_name, args), = item.items()
            pairs.append((str(type_name), args.get("name") if isinstance(args, dict) else None))
        else:
            pairs.append(("", None))
    inputs = data.get("inputs") if isinstance(data.get("inputs"), dict) else {"input_layer": None}
    return default_names([(t, n if isinstance(n, str) else None) for t, n in pairs], inputs)
