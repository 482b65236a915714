"""The registries of spec models that import a model's module on first lookup: layer types
(`layers.LAYER_TYPES`), data formats (`data.DATA_MODELS`) and the train section's named
choices (`train.TRAIN_TYPES`), so a spec pays only for the models it names."""
from __future__ import annotations

import importlib
from collections.abc import Mapping


class LazyModels(Mapping):
    """Key -> model class: keys and membership without importing, the class's module imported
    on lookup. `places` maps each key to (module of `package`, the class's name in it)."""

    def __init__(self, package: str, places: dict[str, tuple[str, str]]):
        self.package, self.places = package, places

    def __getitem__(self, key: str) -> type:
        module, name = self.places[key]
        return getattr(importlib.import_module(f"{self.package}.{module}"), name)

    def __iter__(self):
        return iter(self.places)

    def __len__(self):
        return len(self.places)
