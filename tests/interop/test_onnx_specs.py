"""ONNX export of the reference specs, the file's metadata and checks, and what cannot be exported."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from .onnx_helpers import assert_matches, build, onnx, randomize, right_padded, session

import layerc
from layerc.interop.onnx import save_onnx, to_onnx
from layerc.jobs import _resolved_yaml
from layerc.spec.diagnostics import SpecError

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def _inputs(model, rng, n):
    xs = []
    for name, shape in zip(model.input_names, model.input_shapes):
        if model.graph.inputs[name].dtype == "int32":
            vocab = next(node.layer.spec.input_dim for node in model.nodes if node.layer.spec.type == "Embedding")
            xs.append(right_padded(rng, n, shape[0], vocab))
        else:
            xs.append(rng.uniform(0, 1, (n, *shape)).astype(np.float32))
    return xs


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_reference_spec_matches_layerc_in_onnxruntime(path):
    model = randomize(layerc.build(layerc.load_spec(path)), seed=11)
    rng = np.random.default_rng(4)
    assert_matches(model, [_inputs(model, rng, n) for n in (1, 6)])


def test_sms_spam_lstm_on_right_padded_texts_of_every_length():
    """The masked LSTM spec: sequences from 1 token to full length, and an empty one."""
    model = randomize(layerc.build(layerc.load_spec(ROOT / "specs" / "sms_spam_lstm.yaml")), seed=2)
    ids = np.random.default_rng(0).integers(1, 10000, (82, 80)).astype(np.int32)
    for k, row in enumerate(ids):
        row[k:] = 0  # lengths 0..80
    assert_matches(model, [ids, ids[40:43]])


def test_checker_metadata_and_names(tmp_path):
    spec = layerc.load_spec(ROOT / "specs" / "mnist_cnn.yaml")
    model = randomize(layerc.build(spec))
    path = tmp_path / "cnn.onnx"
    save_onnx(model, path, class_names=[str(i) for i in range(10)])
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["layerc.version"] == layerc.__version__
    assert meta["layerc.spec_name"] == "mnist-cnn"
    assert meta["layerc.spec_sha256"] == hashlib.sha256(_resolved_yaml(spec).encode()).hexdigest()
    assert json.loads(meta["layerc.class_names"]) == [str(i) for i in range(10)]
    assert proto.opset_import[0].version == 17 and proto.producer_name == "layerc"
    assert [i.name for i in proto.graph.input] == ["input_layer"]
    assert [o.name for o in proto.graph.output] == ["dense_1"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [28, 28, 1]
    # the weights are the model's, not its initial ones
    kernel = onnx.numpy_helper.to_array(next(i for i in proto.graph.initializer if i.name.startswith("conv2d/kernel")))
    np.testing.assert_array_equal(kernel, model.named_weights()["conv2d/kernel"].transpose(3, 2, 0, 1))
    sess = session(proto)
    assert sess.get_inputs()[0].shape[0] == "batch"


def test_no_class_names_without_them():
    proto = to_onnx(build("input: {shape: [3]}\nlayers:\n  - Dense: {units: 2}\n"))
    assert "layerc.class_names" not in {p.key for p in proto.metadata_props}


UNSUPPORTED = """\
name: odd
input: {shape: [5, 3]}
layers:
  - Dense: {units: 4}
  - LSTM: {units: 4, activation: gelu, return_sequences: true}
  - Bidirectional: {layer: {GRU: {units: 2, recurrent_activation: silu}}}
"""


def test_unsupported_options_are_located_errors_and_leave_no_file(tmp_path):
    spec_path = tmp_path / "odd.yaml"
    spec_path.write_text(UNSUPPORTED)
    model = layerc.build(layerc.load_spec(spec_path))
    out = tmp_path / "odd.onnx"
    with pytest.raises(SpecError) as e:
        save_onnx(model, out)
    lines = [d.format() for d in e.value.diagnostics]
    assert len(lines) == 2
    assert lines[0].startswith(f"{spec_path}:5:") and "'lstm' (LSTM)" in lines[0] and "activation gelu" in lines[0]
    assert lines[1].startswith(f"{spec_path}:6:") and "recurrent_activation silu" in lines[1]
    assert list(tmp_path.iterdir()) == [spec_path]


def test_a_layer_type_unknown_to_the_exporter_is_named_with_its_line(tmp_path, monkeypatch):
    from layerc.interop import onnx as exporter

    monkeypatch.delitem(exporter._LAYERS, "Flatten")
    spec_path = tmp_path / "m.yaml"
    spec_path.write_text("input: {shape: [2, 2]}\nlayers:\n  - Dense: {units: 2}\n  - Flatten\n")
    out = tmp_path / "m.onnx"
    with pytest.raises(SpecError, match=r"m\.yaml:4:5: error: layer 'flatten' \(Flatten\) cannot be exported"):
        save_onnx(layerc.build(layerc.load_spec(spec_path)), out)
    assert not out.exists() and len(list(tmp_path.iterdir())) == 1


def test_masked_sequences_joined_along_steps_are_refused_with_the_line(tmp_path):
    spec_path = tmp_path / "m.yaml"
    spec_path.write_text("input: {shape: [6], dtype: int32}\nlayers:\n"
                         "  - Embedding: {input_dim: 9, output_dim: 2, mask_zero: true}\n"
                         "  - Concatenate: {axis: 1, inputs: [embedding, embedding]}\n  - LSTM: {units: 2}\n")
    with pytest.raises(SpecError, match=r"m\.yaml:4:\d+: error: layer 'concatenate' \(Concatenate\) joins masked"):
        to_onnx(layerc.build(layerc.load_spec(spec_path)))


def test_float64_and_left_padding_are_refused():
    with pytest.raises(SpecError, match="writes float32 models"):
        to_onnx(build("dtype: float64\ninput: {shape: [3]}\nlayers:\n  - Dense: {units: 2}\n"))
    text = ("input: {shape: [8], dtype: int32}\nlayers:\n  - Embedding: {input_dim: 9, output_dim: 2, mask_zero: true}\n"
            "  - GRU: {units: 2}\ndata: {format: text, train: t.txt, padding: pre}\n")
    with pytest.raises(SpecError, match=r"<spec>:5:\d+: error: .*right-padded sequences"):
        to_onnx(build(text))


def test_unsupported_opset_and_missing_onnx(monkeypatch):
    from layerc.interop import ExportError

    model = build("input: {shape: [3]}\nlayers:\n  - Dense: {units: 2}\n")
    with pytest.raises(ExportError, match="opset 16 is not supported; layerc writes opsets 17-21"):
        to_onnx(model, 16)
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(ExportError, match=r'pip install "layerc\[onnx\]"'):
        to_onnx(model)


def test_layerc_export_api(tmp_path):
    model = build("input: {shape: [3]}\nlayers:\n  - Dense: {units: 2, activation: softmax}\n")
    assert layerc.export(model, tmp_path / "m.onnx") == "onnx"
    assert layerc.export(model, tmp_path / "m.bin", format="onnx", opset=18) == "onnx"
    assert onnx.load(str(tmp_path / "m.bin")).opset_import[0].version == 18
    x = np.ones((2, 3), np.float32)
    got = session(onnx.load(str(tmp_path / "m.onnx"))).run(None, {"input_layer": x})[0]
    np.testing.assert_allclose(got, model.predict(x), atol=1e-6)
    from layerc.interop import ExportError

    with pytest.raises(ExportError, match="cannot tell the format"):
        layerc.export(model, tmp_path / "m.bin")
