"""The spec language's JSON Schema, generated from the pydantic models.

The models validate normalised layers (`{type: Dense, units: 64}`); the schema is
rewritten so that editors accept the forms people write: `- Dense: {units: 64}`,
a bare `- Flatten`, and the `type:` form.
"""
from __future__ import annotations

import copy

from .document import Spec
from .layers import LAYER_TYPES

SCHEMA_ID = "https://layerc.dev/schema/v1.json"


def json_schema() -> dict:
    schema = Spec.model_json_schema()
    defs = schema["$defs"]
    for type_name in LAYER_TYPES:
        args = copy.deepcopy(defs[type_name])
        args["properties"].pop("type", None)
        args["title"] = f"{type_name} arguments"
        defs[f"{type_name}Args"] = args
    schema["properties"]["layers"]["items"] = _layer_forms(list(LAYER_TYPES))
    defs["Bidirectional"]["properties"]["layer"] = _layer_forms(["LSTM", "GRU", "SimpleRNN"])
    defs["BidirectionalArgs"]["properties"]["layer"] = _layer_forms(["LSTM", "GRU", "SimpleRNN"])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "layerc spec"
    return schema


def _layer_forms(types: list[str]) -> dict:
    bare = [t for t in types if not LAYER_TYPES[t].model_json_schema().get("required")]
    keyed = [{"type": "object", "properties": {t: {"anyOf": [{"$ref": f"#/$defs/{t}Args"}, {"type": "null"}]}},
              "required": [t], "additionalProperties": False} for t in types]
    tagged = [{"$ref": f"#/$defs/{t}"} for t in types]
    return {"anyOf": [{"enum": bare}, *keyed, *tagged], "description": "a layer: `- Type: {args}`, `- Type` "
            "or `- {type: Type, ...}`"}
