"""Downloading with an MD5 check, against an HTTP server on 127.0.0.1 (never the internet)."""
import gzip
import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from layerc.data import DataError, builtin, load_data, paths
from layerc.data.download import download

from .helpers import idx_bytes


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, requests
    httpd.shutdown()
    httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_checks_md5_and_writes_atomically(server, tmp_path):
    url, root, _ = server
    data = bytes(range(256)) * 1000
    (root / "f.bin").write_bytes(data)
    dest = tmp_path / "out" / "f.bin"
    assert download(url + "f.bin", dest, md5(data)) == dest
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]


def test_wrong_md5_refused(server, tmp_path):
    url, root, _ = server
    (root / "f.bin").write_bytes(b"tampered")
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DataError, match=f"failed its MD5 check .expected {'0' * 32}, got {md5(b'tampered')}"):
        download(url + "f.bin", dest, "0" * 32)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_http_error(server, tmp_path):
    url, _, _ = server
    with pytest.raises(DataError, match="could not download .*missing.bin: HTTP 404"):
        download(url + "missing.bin", tmp_path / "out" / "m.bin", "0" * 32)
    assert list((tmp_path / "out").iterdir()) == []


def test_builtin_mnist_downloads_when_missing(server, tmp_path, monkeypatch):
    url, root, requests = server
    (root / "mirror").mkdir()
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 12), ("t10k", 5)):
        for kind, arr in (("images-idx3", rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)),
                          ("labels-idx1", (np.arange(n) % 10).astype(np.uint8))):
            name = f"{prefix}-{kind}-ubyte.gz"
            data = gzip.compress(idx_bytes(arr))
            (root / "mirror" / name).write_bytes(data)
            files[name] = md5(data)
    cache = tmp_path / "cache"
    monkeypatch.setattr(builtin, "MNIST_FILES", files)
    monkeypatch.setattr(builtin, "MNIST_MIRRORS", (url + "gone/", url + "mirror/"))
    monkeypatch.setattr(paths, "SHIPPED", tmp_path / "nowhere")
    monkeypatch.setenv("LAYERC_DATA", str(cache))
    monkeypatch.chdir(tmp_path)
    kw = dict(spec_dir=tmp_path, input_shape=(16,), output_shape=(10,),
              loss_name="sparse_categorical_crossentropy", seed=0)
    with pytest.raises(DataError, match="not found"):
        load_data({"dataset": "mnist"}, download=False, **kw)
    ds = load_data({"dataset": "mnist"}, **kw)
    assert ds.train[0].shape == (12, 16) and ds.test[0].shape == (5, 16)
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(files)
    assert len([r for r in requests if r.startswith("/mirror/")]) == 4  # after a 404 from the first mirror
    load_data({"dataset": "mnist"}, **kw)
    assert len(requests) == 8  # nothing fetched the second time


def test_builtin_mnist_bad_download(server, tmp_path, monkeypatch):
    url, root, _ = server
    (root / "a.gz").write_bytes(b"not mnist")
    monkeypatch.setattr(builtin, "MNIST_FILES", {"a.gz": "0" * 32})
    monkeypatch.setattr(builtin, "MNIST_MIRRORS", (url,))
    monkeypatch.setattr(paths, "SHIPPED", tmp_path / "nowhere")
    monkeypatch.setenv("LAYERC_DATA", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="MNIST file a.gz is in no data folder and could not be downloaded: .*MD5"):
        builtin.ensure_mnist(tmp_path)
