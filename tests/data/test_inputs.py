"""Input files for `layerc predict`, read and prepared as the training data was."""
import numpy as np
import pytest

from layerc.data import DataError, load_data, prepare_inputs, read_input_file


def test_read_input_file(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    np.savez(tmp_path / "b.npz", x=np.zeros((4, 3)), other=np.ones(2))
    np.savez(tmp_path / "c.npz", a=np.zeros(1), b=np.zeros(1))
    (tmp_path / "d.txt").write_text("first line\n\nsecond line\n")
    assert read_input_file(tmp_path / "a.npy").shape == (2, 3)
    assert read_input_file(tmp_path / "b.npz").shape == (4, 3)
    assert read_input_file(tmp_path / "d.txt") == ["first line", "second line"]
    with pytest.raises(DataError, match="name the input array `x`"):
        read_input_file(tmp_path / "c.npz")
    with pytest.raises(DataError, match="not found"):
        read_input_file(tmp_path / "missing.csv")
    np.save(tmp_path / "o.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled"):
        read_input_file(tmp_path / "o.npy")


def test_series_from_csv_lines(tmp_path):
    ds = load_data({"dataset": "airline_passengers"}, spec_dir=None, input_shape=(12,), output_shape=(1,),
                   loss_name="mse", seed=0)
    lines = read_input_file(_copy_tail("datasets/airline-passengers/airline-passengers.csv", tmp_path, 13))
    x = prepare_inputs(lines, None, ds.fitted, (12,))
    assert x.shape == (2, 12)  # the last test window, then the window that forecasts 1961-01
    np.testing.assert_allclose(x[0], ds.test[0][-1], rtol=1e-5)
    np.testing.assert_allclose(x[1, :-1], x[0, 1:])
    no_header = prepare_inputs(lines[1:], None, ds.fitted, (12,))
    np.testing.assert_allclose(no_header, x)


def _copy_tail(src, tmp_path, n):
    lines = open(src).read().splitlines()
    (tmp_path / "in.csv").write_text("\n".join([lines[0]] + lines[-n:]))
    return tmp_path / "in.csv"


def test_labelled_text_lines_drop_their_labels():
    ds = load_data({"dataset": "sms_spam", "max_length": 30}, spec_dir=None, input_shape=(30,),
                   output_shape=(1,), loss_name="binary_crossentropy", seed=0)
    a = prepare_inputs(["spam\tWIN a FREE prize", "ham\tsee you soon"], None, ds.fitted, (30,))
    b = prepare_inputs(["WIN a FREE prize", "see you soon"], None, ds.fitted, (30,))
    np.testing.assert_array_equal(a, b)
