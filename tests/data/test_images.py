"""`format: images` (issue 21): class folders and CSV listings with Keras's
image_dataset_from_directory semantics, the same arrays and weights as IDX files of the same
digits, Keras's bilinear resize, and `layerc predict` on image files."""
import os
import time

import numpy as np
import pytest
from layerc import jobs
from layerc.data import DataError, load_data
from layerc.data.images import decode_image, list_images, resize
from layerc.spec.data import parse_data_spec

from .helpers import mnist_folder, write_idx

pytest.importorskip("PIL")

SPEC = """\
name: digits
seed: 3
input: {{shape: [28, 28, 1]}}
layers:
  - Conv2D: {{filters: 4, kernel_size: 3, activation: relu}}
  - MaxPooling2D: {{pool_size: 2}}
  - Flatten
  - Dense: {{units: 10, activation: softmax}}
data: {data}
train: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy], batch_size: 16, epochs: 2}}
"""
IMAGES = "{format: images, train: digits/, image_size: [28, 28], color_mode: grayscale, " \
         "rescale: 0.00392156862745098, validation_split: 0.2}"
IDX = "{format: idx, train: {x: x.gz, y: y.gz}, rescale: 0.00392156862745098, validation_split: 0.2}"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    x, y = mnist_folder(root / "digits", 120)
    return root, x, y


def images(**kw):
    return parse_data_spec({"format": "images", "train": "digits", "image_size": [28, 28],
                            "color_mode": "grayscale", **kw})


def load(spec, root, shape=(28, 28, 1), units=10, loss="sparse_categorical_crossentropy"):
    return load_data(spec, spec_dir=root, input_shape=shape, output_shape=(units,), loss_name=loss, seed=0)


def test_png_folder_gives_the_idx_arrays_in_keras_order(digits):
    root, x, y = digits
    listing = list_images(images(), images().train, root)
    assert listing.class_names == [str(d) for d in range(10)]
    names = [(p.parent.name, p.name) for p in listing.paths]
    assert names == sorted(names, key=lambda t: (int(t[0]), t[1]))  # class by class, files sorted
    ds = load(images(shuffle=False), root)
    assert ds.train[0].dtype == np.float32 and ds.train[0].shape == (120, 28, 28, 1)
    np.testing.assert_array_equal(ds.train[0][..., 0], x.astype(np.float32))
    np.testing.assert_array_equal(ds.train[1], y)
    assert ds.fitted["label_names"] == [str(d) for d in range(10)]


def test_jpeg_folder_decodes_close_to_the_digits(tmp_path):
    x, y = mnist_folder(tmp_path / "digits", 40, ".jpg", quality=95)
    ds = load(images(shuffle=False), tmp_path)
    np.testing.assert_array_equal(ds.train[1], y)
    assert np.abs(ds.train[0][..., 0] - x).mean() < 2.0  # lossy, but the same digits
    rgb = load(images(shuffle=False, color_mode="rgb"), tmp_path, shape=(28, 28, 3))
    np.testing.assert_array_equal(rgb.train[0][..., 0], rgb.train[0][..., 2])  # grey in all channels


def test_same_weights_as_idx_files_of_the_same_images(digits, tmp_path):
    root, x, y = digits
    (root / "images.yaml").write_text(SPEC.format(data=IMAGES))
    write_idx(root / "x.gz", x)
    write_idx(root / "y.gz", y)
    (root / "idx.yaml").write_text(SPEC.format(data=IDX))
    a = jobs.train(root / "images.yaml", run_dir=tmp_path / "a")
    b = jobs.train(root / "idx.yaml", run_dir=tmp_path / "b")
    assert a.history[-1]["loss"] == b.history[-1]["loss"]
    with np.load(a.run_dir / "weights.npz") as wa, np.load(b.run_dir / "weights.npz") as wb:
        assert sorted(wa.files) == sorted(wb.files)
        for k in wa.files:
            assert np.array_equal(wa[k], wb[k]), k


def test_csv_listing_gives_the_folder_arrays(digits):
    root, x, y = digits
    listing = list_images(images(), images().train, root)
    rows = [f"{p.relative_to(root)},{p.parent.name}" for p in listing.paths]
    (root / "labels.csv").write_text("file,digit\n" + "\n".join(rows) + "\n")
    spec = images(train="labels.csv", path_column="file", label_column="digit", shuffle=False)
    ds = load(spec, root)
    np.testing.assert_array_equal(ds.train[0][..., 0], x)
    np.testing.assert_array_equal(ds.train[1], y)
    assert ds.fitted["label_names"] == [str(d) for d in range(10)]  # numeric labels in number order


def test_class_names_fix_the_order_and_label_modes(digits):
    root, _, _ = digits
    (root / "two").mkdir(exist_ok=True)
    for d in ("3", "7"):
        if not (root / "two" / d).exists():
            (root / "two" / d).symlink_to(root / "digits" / d)
    spec = images(train="two", class_names=["7", "3"], shuffle=False)
    ds = load(spec, root, units=2)
    assert ds.fitted["label_names"] == ["7", "3"]
    first = ds.train[1][0]
    assert first == 0  # the 7s come first
    cat = load(images(train="two", label_mode="categorical"), root, units=2, loss="categorical_crossentropy")
    assert cat.train[1].shape[1:] == (2,)
    binary = load(images(train="two", label_mode="binary"), root, units=1, loss="binary_crossentropy")
    assert set(np.unique(binary.train[1])) == {0.0, 1.0}
    with pytest.raises(DataError, match="label_mode categorical gives one-hot labels"):
        load(images(train="two", label_mode="categorical"), root, units=2)
    with pytest.raises(DataError, match="label_mode binary takes two classes"):
        load(images(label_mode="binary"), root, units=1, loss="binary_crossentropy")


def test_validation_split_and_test_folder_are_seeded(digits, tmp_path):
    root, x, y = digits
    spec = images(validation_split=0.25, test="digits")
    a, b = load(spec, root), load(spec, root)
    assert len(a.validation[0]) == 30 and len(a.train[0]) == 90 and len(a.test[0]) == 120
    np.testing.assert_array_equal(a.train[0], b.train[0])
    np.testing.assert_array_equal(a.validation[1], b.validation[1])
    other = load_data(spec, spec_dir=root, input_shape=(28, 28, 1), output_shape=(10,),
                      loss_name="sparse_categorical_crossentropy", seed=1)
    assert not np.array_equal(a.train[1], other.train[1])
    (tmp_path / "test" / "3").mkdir(parents=True)
    (tmp_path / "test" / "3" / "a.png").write_bytes(next((root / "digits" / "3").iterdir()).read_bytes())
    one = load(images(test=str(tmp_path / "test")), root)
    assert list(one.test[1]) == [3]  # a test folder with some of the classes, labelled by name
    (tmp_path / "test" / "cat").mkdir()
    with pytest.raises(DataError, match="folder 'cat' is no class of the training data"):
        load(images(test=str(tmp_path / "test")), root)


def test_resize_matches_keras(keras):
    rng = np.random.default_rng(0)
    sizes = [((28, 28), (64, 64)), ((37, 51), (20, 13)), ((5, 9), (256, 256)), ((100, 80), (7, 33)),
             ((1, 1), (3, 4)), ((8, 8), (8, 8)), ((13, 7), (13, 20)), ((480, 640), (256, 256))]
    for (h, w), size in sizes:
        for channels in (1, 3):
            x = rng.random((h, w, channels)).astype(np.float32)
            for crop, pad, how in ((False, False, "bilinear"), (True, False, "bilinear"),
                                   (False, True, "bilinear"), (False, False, "nearest"), (True, False, "nearest")):
                want = keras.ops.convert_to_numpy(keras.ops.image.resize(
                    x, size, interpolation=how, antialias=False, crop_to_aspect_ratio=crop,
                    pad_to_aspect_ratio=pad))
                got = resize(x, size, crop, pad, how)
                assert got.shape == want.shape and got.dtype == np.float32
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-5,
                                           err_msg=f"{(h, w)} -> {size} {crop} {pad} {how}")


def test_image_size_crop_and_pad_reach_the_model(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "wide" / label).mkdir(parents=True)
        Image.fromarray(np.full((20, 40, 3), 200 if label == "a" else 50, np.uint8)).save(
            tmp_path / "wide" / label / "1.bmp")
    base = {"format": "images", "train": "wide", "image_size": [10, 10], "shuffle": False}
    squeezed = load(parse_data_spec(base), tmp_path, shape=(10, 10, 3), units=2)
    assert squeezed.train[0].shape == (2, 10, 10, 3)
    padded = load(parse_data_spec({**base, "pad_to_aspect_ratio": True}), tmp_path, shape=(10, 10, 3), units=2)
    assert padded.train[0][0, 0, 5, 0] == 0 and padded.train[0][0, 5, 5, 0] == 200  # black bars above and below
    cropped = load(parse_data_spec({**base, "crop_to_aspect_ratio": True}), tmp_path, shape=(10, 10, 3), units=2)
    assert (cropped.train[0][0] == 200).all()


def test_gif_first_frame_and_rgba(tmp_path):
    from PIL import Image

    for label, value in (("a", 10), ("b", 240)):
        (tmp_path / "g" / label).mkdir(parents=True)
        frames = [Image.fromarray(np.full((6, 6), v, np.uint8)).convert("P") for v in (value, 255 - value)]
        frames[0].save(tmp_path / "g" / label / "anim.gif", save_all=True, append_images=frames[1:])
    spec = parse_data_spec({"format": "images", "train": "g", "image_size": [6, 6], "color_mode": "rgba",
                            "shuffle": False})
    ds = load(spec, tmp_path, shape=(6, 6, 4), units=2)
    assert ds.train[0].shape == (2, 6, 6, 4)
    assert np.allclose(ds.train[0][0, ..., 0], 10) and np.allclose(ds.train[0][1, ..., 0], 240)
    assert (ds.train[0][..., 3] == 255).all()


def test_predict_takes_an_image_a_folder_and_a_list(digits, tmp_path, capsys):
    root, _, _ = digits
    (root / "images.yaml").write_text(SPEC.format(data=IMAGES))
    run = jobs.train(root / "images.yaml", run_dir=tmp_path / "run").run_dir
    spec, model, _ = jobs.load_trained(run, None)
    folder = root / "digits" / "4"
    files = sorted(folder.iterdir())
    (tmp_path / "list.txt").write_text("\n".join(str(p) for p in files[:2]) + "\n")
    for given, count in ((files[0], 1), (folder, len(files)), (tmp_path / "list.txt", 2)):
        out = tmp_path / "p.csv"
        y = jobs.predict(run, input_path=given, output_path=out)
        lines = out.read_text().splitlines()
        assert lines[0] == "file,predicted," + ",".join(f"p_{d}" for d in range(10))
        assert len(lines) == count + 1 and lines[1].split(",")[0] == str(files[0])
        assert y.shape == (count, 10)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "bad.txt").write_text(f"{files[0]}\nempty.png\nmissing.jpg\n")
    with pytest.raises(DataError, match=f"input: 2 files cannot be used, so fix or remove them: "
                                        f"{tmp_path / 'empty.png'}: an empty file \\(0 bytes\\); "
                                        f"{tmp_path / 'missing.jpg'}: not found"):
        jobs.predict(run, input_path=tmp_path / "bad.txt")
    with pytest.raises(jobs.RunError, match="image inputs are files"):
        jobs.predict(run, input_path="-")
    # prepared as the training data: decoded, then rescaled
    x = np.stack([decode_image(p, spec.data) for p in files]) * np.float32(0.00392156862745098)
    np.testing.assert_array_equal(jobs.predict(run, input_path=folder), model.predict(x))


def test_validate_checks_shape_classes_and_label_mode_at_their_lines(digits, capsys):
    from layerc.cli import main

    root, _, _ = digits
    shape = f"bad.yaml:3:16: error: {root / 'digits'}: each sample has shape (28, 28, 3)"
    cases = [(IMAGES.replace("grayscale", "rgb"), shape),
             (IMAGES.replace("validation_split", "label_mode: categorical, validation_split"),
              "error: label_mode categorical gives one-hot labels but the loss sparse_categorical_crossentropy "
              "takes class ids")]
    for data, want in cases:
        (root / "bad.yaml").write_text(SPEC.format(data=data))
        with pytest.raises(SystemExit) as e:
            main(["validate", str(root / "bad.yaml")])
        assert e.value.code == 1 and want in capsys.readouterr().out, data
    (root / "bad.yaml").write_text(SPEC.format(data=IMAGES).replace("units: 10", "units: 12"))
    with pytest.raises(SystemExit):
        main(["validate", str(root / "bad.yaml")])
    assert "has 12 units but the data has 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" in capsys.readouterr().out


def test_memory_estimate_counts_the_listed_files_at_image_size(digits):
    from layerc.data import estimate_bytes

    root, _, _ = digits
    spec = images(image_size=[64, 32], color_mode="rgb")
    assert estimate_bytes(spec, spec_dir=root, input_shape=(64, 32, 3)) == 120 * (64 * 32 * 3 * 4 + 4)


def test_limit_keeps_every_class_share(digits):
    root, x, y = digits
    ds = load(images(limit=20, shuffle=False), root)
    picked = [i * 120 // 20 for i in range(20)]
    np.testing.assert_array_equal(ds.train[1], y[picked])  # evenly spaced, in the listing's order
    np.testing.assert_array_equal(ds.train[0][..., 0], x[picked])
    assert len(set(ds.train[1])) >= 8


def test_a_folder_is_listed_once_a_job_until_it_changes(tmp_path, monkeypatch):
    from PIL import Image

    from layerc.data import folders

    root = tmp_path / "listed"
    for c in "ab":
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (4, 4)).save(root / c / f"{i}.png")
    listings = []
    real = folders._list_files
    monkeypatch.setattr(folders, "_list_files", lambda *a: listings.append(1) or real(*a))
    monkeypatch.setattr(folders, "_listed", {})
    folders.list_files(root, folders.FORMATS, None, False)
    folders.list_files(root, folders.FORMATS, None, False)
    assert len(listings) == 2  # just written: a change within the clock's tick could go unseen
    old = time.time() - 60
    for d in (root, root / "a", root / "b"):
        os.utime(d, (old, old))
    first = folders.list_files(root, folders.FORMATS, None, False)
    again = folders.list_files(root, folders.FORMATS, None, False)
    assert len(listings) == 3 and again == first and again is not first
    again.paths.clear()  # a caller's changes stay its own
    assert folders.list_files(root, folders.FORMATS, None, False) == first and len(listings) == 3
    Image.new("L", (4, 4)).save(root / "b" / "3.png")  # a file added: its folder's times change
    added = folders.list_files(root, folders.FORMATS, None, False)
    assert len(listings) == 4 and added.paths == first.paths + [root / "b" / "3.png"]
    assert folders.list_files(root, folders.FORMATS, ["b", "a"], False).class_names == ["b", "a"]  # its own key
