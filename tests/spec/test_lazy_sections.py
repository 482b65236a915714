"""The `data:` and `train:` models are imported by the module of what a spec names, as the
layer families are: the seed spec pays for the built-in dataset's model and no callback."""
import subprocess
import sys
import typing

from layerc.spec import data as D
from layerc.spec import train as T
from tests.modules import modules_after


def test_summary_imports_only_the_modules_its_sections_name():
    _, mods = modules_after("summary", "specs/mnist_cnn.yaml")
    spec_mods = {m for m in mods if m.startswith(("layerc.spec.data", "layerc.spec.train"))}
    assert spec_mods == {"layerc.spec.data", "layerc.spec.data.base", "layerc.spec.data.builtin",
                         "layerc.spec.train"}, spec_mods


def test_data_models_name_each_format_s_own_model():
    for kind in D.DATA_MODELS:
        model = D.DATA_MODELS[kind]
        tag = "dataset" if kind == "builtin" else "format"
        assert tag in model.model_fields and (kind == "builtin" or typing.get_args(
            model.model_fields["format"].annotation) == (kind,)), kind
    members = [typing.get_args(a)[0] for a in typing.get_args(typing.get_args(D.DataSpec)[0])]
    assert members == [D.DATA_MODELS[k] for k in D.DATA_MODELS]


def test_callback_names_are_the_callbacks_module_s():
    from layerc.spec.train import callbacks

    classes = {n for n, v in vars(callbacks).items() if isinstance(v, type) and issubclass(v, T.Strict)
               and v.__module__ == callbacks.__name__}
    assert set(T.CALLBACK_NAMES) == classes | {"CallbackSpec"}
    assert set(T._models_by_type(T.CallbackSpec).values()) == {getattr(callbacks, n) for n in classes}


def test_names_import_like_a_plain_module():
    code = ("import sys\nfrom layerc.spec.data import CsvData, Source\nfrom layerc.spec.train import TerminateOnNaN\n"
            "assert TerminateOnNaN().type == 'terminate_on_nan'\n"
            "print(sorted(n for n in sys.modules if n.startswith(('layerc.spec.data.', 'layerc.spec.train.'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert eval(r.stdout) == ["layerc.spec.data.base", "layerc.spec.data.csv", "layerc.spec.data.files",
                              "layerc.spec.train.callbacks"]
