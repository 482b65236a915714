"""The decoded-data cache (data/cache.py): a second decode of the same files is a load of one
.npy file, a changed file decodes afresh, entries are safe to read and written atomically."""
import os

import numpy as np
import pytest

from layerc.data import cache

from .test_stream import decode_png, write_pngs

SETTINGS = {"image_size": [8, 8], "color_mode": "grayscale"}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LAYERC_CACHE_DIR", str(folder))
    return folder


def counting(calls):
    def decode(path):
        calls.append(path)
        return decode_png(path)
    return decode


def test_second_decode_loads_the_cache_without_decoding(tmp_path, cache_dir):
    paths, _ = write_pngs(tmp_path / "png", 600)
    calls, info = [], {}
    first, kept, bad = cache.decoded(paths, counting(calls), SETTINGS, info)
    assert kept == list(range(600)) and bad == []
    assert len(calls) == 600 and info["cache"] == "written"
    assert np.array_equal(first, np.stack([decode_png(p) for p in paths]))
    assert [p.name for p in cache_dir.iterdir()] == [os.path.basename(info["cache_file"])]
    calls.clear()
    again, _, _ = cache.decoded(paths, counting(calls), SETTINGS, info)
    assert calls == [] and info["cache"] == "hit" and np.array_equal(again, first)
    # other settings are another entry
    cache.decoded(paths, counting(calls), {**SETTINGS, "image_size": [4, 4]}, info)
    assert len(calls) == 600 and len(list(cache_dir.iterdir())) == 2


def test_a_changed_file_decodes_afresh_and_replaces_the_entry(tmp_path, cache_dir):
    paths, _ = write_pngs(tmp_path / "png", 30)
    info = {}
    old = cache.decoded(paths, decode_png, SETTINGS, info)[0]
    old_file = info["cache_file"]
    from PIL import Image

    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(paths[4])  # new content, size and time
    os.utime(paths[4], ns=(1, 1))
    calls = []
    new = cache.decoded(paths, counting(calls), SETTINGS, info)[0]
    assert len(calls) == 30 and info["cache"] == "written" and info["cache_file"] != old_file
    assert np.all(new[4] == 7) and np.array_equal(new[5:], old[5:])
    assert not os.path.exists(old_file) and len(list(cache_dir.iterdir())) == 1
    # a file added to the list is another entry too
    more, _ = write_pngs(tmp_path / "more", 1, seed=5)
    cache.decoded(paths + more, decode_png, SETTINGS, info)
    assert info["cache"] == "written"


def test_an_unreadable_or_pickled_entry_is_decoded_again(tmp_path, cache_dir):
    paths, _ = write_pngs(tmp_path / "png", 10)
    info = {}
    cache.decoded(paths, decode_png, SETTINGS, info)
    entry = info["cache_file"]
    np.save(entry, np.array([{"evil": 1}] * 10, dtype=object), allow_pickle=True)
    calls = []
    x = cache.decoded(paths, counting(calls), SETTINGS, info)[0]
    assert len(calls) == 10 and x.dtype == np.float32 and info["cache"] == "written"
    with open(entry, "wb") as f:
        f.write(b"\x93NUMPY torn")
    assert cache.decoded(paths, decode_png, SETTINGS, info)[0].shape == (10, 8, 8, 1)
    assert not [p for p in cache_dir.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers


def test_cache_off_and_unwritable_cache(tmp_path, monkeypatch):
    paths, _ = write_pngs(tmp_path / "png", 5)
    monkeypatch.setenv("LAYERC_CACHE_DIR", "off")
    info = {}
    assert cache.decoded(paths, decode_png, SETTINGS, info)[0].shape == (5, 8, 8, 1) and info["cache"] == "off"
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("LAYERC_CACHE_DIR", str(blocked / "sub"))  # below a file: cannot be made
    cache.decoded(paths, decode_png, SETTINGS, info)
    assert info["cache"].startswith("not written")


def test_default_location_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LAYERC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_root() == tmp_path / "layerc" / "decoded"


def test_files_that_fail_are_left_out_listed_and_not_cached(tmp_path, cache_dir):
    paths, _ = write_pngs(tmp_path / "png", 300)
    for i in (3, 290):
        with open(paths[i], "r+b") as f:
            f.truncate(20)
    info = {}
    x, kept, bad = cache.decoded(paths, decode_png, SETTINGS, info, skip=(OSError,))
    assert kept == [i for i in range(300) if i not in (3, 290)] and [p for p, _ in bad] == [paths[3], paths[290]]
    assert np.array_equal(x, np.stack([decode_png(paths[i]) for i in kept]))
    assert info["cache"].startswith("not written") and not cache_dir.exists()
    with pytest.raises(OSError):  # not one of `skip`: the decoder's error stands
        cache.decoded(paths, decode_png, SETTINGS, info)
