"""Downloading a file with an MD5 check, written atomically (temporary file, then rename)."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DataError

CHUNK = 1 << 16


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, md5: str, *, timeout: float = 60.0) -> Path:
    """Fetch `url` into `dest` if its MD5 is `md5`; nothing is left behind on failure.

    Args:
        url: http(s) address.
        dest: final file path; its folder is created.
        md5: expected hex digest of the file's bytes.
        timeout: seconds to wait for the server.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(CHUNK), b""):
                h.update(block)
                out.write(block)
        if h.hexdigest() != md5.lower():
            raise DataError(f"download of {url} failed its MD5 check (expected {md5}, got {h.hexdigest()})")
        os.replace(tmp, dest)
    except urllib.error.HTTPError as e:
        raise DataError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"could not download {url}: {reason}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
