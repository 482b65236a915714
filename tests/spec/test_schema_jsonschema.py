"""`layerc schema` agrees with `layerc validate`: checked with the jsonschema package.

A JSON Schema sees one document's shape, so it cannot reject what only `validate` finds
(listed in layerc/spec/schema.py's docstring): graph and shape errors, cross-field rules,
names in another letter case, the layer count limit, and YAML-level problems. Those
cases are asserted to pass the schema; everything else agrees both ways.
"""
import json
import random
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from layerc.cli import app
from layerc.spec import SpecError, parse_spec
from layerc.spec.schema import json_schema
from tests.spec.mutate import mutate

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
HEAD = "input: {shape: [784]}\nlayers:\n"


@pytest.fixture(scope="module")
def validator():
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def readme_specs():
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [b for b in blocks if "layers:" in b]


def accepts(validator, text):
    return validator.is_valid(yaml.safe_load(text))


def validates(text):
    try:
        parse_spec(text)
        return True
    except SpecError:
        return False


@pytest.mark.parametrize("text", [p.read_text() for p in SPECS] + readme_specs(),
                         ids=[p.name for p in SPECS] + [f"README-{i}" for i in range(len(readme_specs()))])
def test_shipped_and_readme_specs_pass_the_schema(validator, text):
    assert validates(text)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(yaml.safe_load(text))]
    assert not errors, errors


def test_readme_has_spec_examples():
    assert readme_specs()


WRITTEN_FORMS = [
    HEAD + "  - Dense: {units: 3}\n  - Flatten\n  - {type: Dropout, rate: 0.1}\n  - Flatten:\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {optimizer: adam, loss: mse, metrics: [mae, {type: top_k_accuracy, k: 3}]}\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {optimizer: {sgd: {momentum: 0.9}}, loss: {huber: {delta: 2.0}}}\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {optimizer: {type: adam, learning_rate: {cosine_decay: "
           "{initial_learning_rate: 0.1, decay_steps: 10}}}, loss: {type: mse}}\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {loss: mse, callbacks: [terminate_on_nan, {early_stopping: {patience: 2}},"
           " {type: checkpoint, save_best_only: true}], metrics: [acc, precision, {recall: {thresholds: 0.3}}]}\n",
    "input: {shape: [10, 4]}\nlayers:\n  - Bidirectional: {layer: {LSTM: {units: 3}}}\n"
    "  - Bidirectional: {layer: {type: GRU, units: 2}, merge_mode: sum}\n",
    "layers:\n  - Dense: {units: 3, input_shape: [4]}\n",
]


@pytest.mark.parametrize("text", WRITTEN_FORMS)
def test_every_written_form_passes_both(validator, text):
    assert validates(text) and accepts(validator, text)


# schema-level errors, most from tests/spec/test_validate.py and test_issue18_spec.py
INVALID = [HEAD + f"  - {layer}\n" for layer in [
    "Dense: {units: 3, activaton: relu}", "Dense: {units: -3}", "Dropout: {rate: 1.5}", "Dense: {units: three}",
    "Dense: {units: 2.5}", "Dense: {units: 3, use_bias: maybe}", "Conv2D: {filters: 3, kernel_size: [3, 3, 3]}",
    "Dense: {units: 3, activation: rleu}", "Conv2d: {filters: 3, kernel_size: 3}", "Dense: {activation: relu}",
    "Bidirectional: {layer: {LSTM: {units: 0}}}", "Bidirectional: {layer: {Dense: {units: 3}}}", "Nope", "3",
    "{Dense: {units: 1}, Flatten: null}", "Dense: {units: '64'}", "{type: [Dense]}", "Dense: {units: 1e400}",
    "Dense: {units: " + "1" * 400 + "}", "Dense: {units: 3, activation: Relu}", "Dense: 3",
]] + [
    HEAD + "  - Dense: {units: 3}\nseeed: 4\n", "layerc: 2\n" + HEAD + "  - Flatten\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {loss: mse, epochs: 0}\n", "- 1\n- 2\n", "just a string",
    "input: {shape: [784]}\nlayers: []\n", "input: {shape: [784]}\nlayers: Dense\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {loss: msex}\n", HEAD + "  - Dense: {units: 3}\ntrain: {optimizer: adamx, loss: mse}\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {loss: mse, metrics: [nope]}\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {loss: mse, callbacks: [{early_stopping: {patience: -1}}]}\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {loss: mse, optimizer: {adam: {learning_rate: 1e400}}}\n",
    HEAD + "  - Dense: {units: 3}\ntrain: {loss: {mse: {delta: 1}}}\n",
    HEAD + "  - Dense: {units: 3}\ndata: {dataset: mnist, validation_split: 2}\n",
]

# what only `validate` can see: the schema accepts them
OUT_OF_REACH = [
    "layers:\n  - Flatten\n",  # neither input nor inputs: a cross-field rule
    HEAD + "  - Conv2D: {filters: 3, kernel_size: 3, strides: 2, dilation_rate: 2}\n",  # cross-field
    HEAD + "  - Dense: {units: 3}\ntrain: {optimizer: {adam: {clipnorm: 1.0, clipvalue: 1.0}}, loss: mse}\n",
    HEAD + "  - Dense: {units: 3, input_shape: [4]}\n",  # input_shape and input both
    HEAD + "  - Dense: {units: 3}\n  - Dense: {units: 3, inputs: nowhere}\n",  # the graph
    HEAD + "  - Reshape: {target_shape: [5, 5]}\n",  # shapes
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_specs_fail_both(validator, text):
    assert not validates(text)
    assert not accepts(validator, text)


@pytest.mark.parametrize("text", OUT_OF_REACH)
def test_out_of_reach_errors_pass_the_schema(validator, text):
    import layerc
    try:
        layerc.build(parse_spec(text))
        rejected = False
    except SpecError:
        rejected = True
    assert rejected and accepts(validator, text)


def test_schema_accepts_every_mutated_spec_validate_accepts(validator):
    rng = random.Random(18)
    checked = 0
    for i in range(300):
        text = mutate(SPECS[i % len(SPECS)].read_text(), rng)
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError, ValueError):
            continue
        if validates(text):
            checked += 1
            assert validator.is_valid(data), text
    assert checked > 20


def test_every_property_has_a_description():
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, prop in (node.get("properties") or {}).items():
                if not (isinstance(prop, dict) and prop.get("description")):
                    missing.append(f"{where}.{key}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(json_schema(), "#")
    assert not missing, missing


def test_no_empty_enums():
    text = json.dumps(json_schema())
    assert '"enum": []' not in text
