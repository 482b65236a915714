"""The layer spec registry: every type name resolves, lazily, to the model of that name."""
import subprocess
import sys

from layerc.core.registry import LAYERS
from layerc.spec.layers import FAMILIES, LAYER_TYPES, LayerSpec


def test_every_type_resolves_to_its_own_model():
    assert len(LAYER_TYPES) == sum(map(len, FAMILIES.values()))
    for name in LAYER_TYPES:
        cls = LAYER_TYPES[name]
        assert issubclass(cls, LayerSpec) and cls.model_fields["type"].default == name


def test_the_spec_and_core_registries_name_the_same_layers():
    assert set(LAYER_TYPES) == set(LAYERS)


def test_names_import_like_a_plain_module():
    code = ("import sys\nfrom layerc.spec.layers import Dense, RecurrentSpec\n"
            "assert Dense(units=3).units == 3\n"
            "print(sorted(n for n in sys.modules if n.startswith('layerc.spec.layers.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert eval(r.stdout) == ["layerc.spec.layers.base", "layerc.spec.layers.dense",
                              "layerc.spec.layers.recurrent"]
