"""Streaming (data/stream.py): batches read and decoded from files as training goes give the
in-memory run's weights bit for bit, read a bounded number of batches ahead, and stop reading
when training stops."""
import threading

import numpy as np
import pytest

import layerc
from layerc.data.errors import DataError
from layerc.data.stream import Streamed, batches
from layerc.train.callbacks import Callback
from layerc.train.loop import Interrupted

Image = pytest.importorskip("PIL.Image")

SPEC = """\
name: streamed
seed: 3
input: {shape: [8, 8, 1]}
layers:
  - Conv2D: {filters: 4, kernel_size: 3, activation: relu}
  - Flatten
  - Dropout: {rate: 0.2}
  - Dense: {units: 3, activation: softmax}
train: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy], batch_size: 16, epochs: 2}
"""


def decode_png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32)[:, :, None]


def write_pngs(folder, n, seed=0, size=8):
    """n random grayscale PNG files and their labels (0..2)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths, (np.arange(n) % 3).astype(np.int32)


def rescale(raw):
    return raw * np.float32(1 / 255)


def trained(tmp_path, x, y, validation=None, callbacks=()):
    (tmp_path / "s.yaml").write_text(SPEC)
    model = layerc.build(layerc.load_spec(tmp_path / "s.yaml"))
    trainer = model.trainer()
    trainer.callbacks += list(callbacks)
    trainer.fit(x, y, validation_data=validation, seed=3)
    return model, trainer


def test_streamed_training_gives_the_in_memory_weights_bit_for_bit(tmp_path):
    paths, y = write_pngs(tmp_path / "png", 150)
    memory = rescale(np.stack([decode_png(p) for p in paths]))
    streamed = Streamed(paths, decode_png, (8, 8, 1), np.float32, rescale)
    assert streamed.shape == memory.shape and np.array_equal(streamed[np.arange(5, 9)], memory[5:9])
    cut = 120
    a, ta = trained(tmp_path, memory[:cut], y[:cut], (memory[cut:], y[cut:]))
    b, tb = trained(tmp_path, streamed.take(range(cut)), y[:cut], (streamed.take(range(cut, 150)), y[cut:]))
    assert all(np.array_equal(wa, wb) for wa, wb in zip(a.get_weights(), b.get_weights()))
    assert ta.history == [{**h, "seconds": ta.history[i]["seconds"]} for i, h in enumerate(tb.history)]
    assert "val_accuracy" in tb.history[-1]


def test_reading_ahead_is_bounded_and_stops_with_training(tmp_path):
    paths, y = write_pngs(tmp_path / "png", 320)
    decoded = []
    threads = set()

    def counting(path):
        decoded.append(path)
        threads.add(threading.current_thread().name)
        return decode_png(path)

    class StopAt(Callback):
        def on_batch_end(self, trainer, step, logs):
            if step == 3:
                trainer.stop_requested = True
                seen.append(len(decoded))

    seen = []
    with pytest.raises(Interrupted):
        trained(tmp_path, Streamed(paths, counting, (8, 8, 1), np.float32, rescale), y, callbacks=[StopAt()])
    after = len(decoded)
    # 3 batches trained, at most 2 a thread read ahead, nothing read after the stop
    assert 3 * 16 <= seen[0] <= after <= 16 * (3 + 1 + 2 * 4)
    assert after < len(paths)
    assert threads and all(t.startswith("layerc-read") for t in threads)  # not the training thread
    assert not any(t.name.startswith("layerc-read") for t in threading.enumerate())


def test_a_file_that_fails_mid_stream_is_named(tmp_path):
    paths, y = write_pngs(tmp_path / "png", 40)
    with open(paths[17], "r+b") as f:
        f.truncate(30)
    x = Streamed(paths, decode_png, (8, 8, 1), np.float32)
    with pytest.raises(DataError, match=r"00017\.png"):
        with batches([x], [y], [np.arange(16), np.arange(16, 32)]) as reader:
            list(reader)
    assert not any(t.name.startswith("layerc-read") for t in threading.enumerate())
