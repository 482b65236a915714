"""Image decoding (and header checks) in worker processes.

Decoding one small image is mostly Python (Pillow's file and plugin handling), so decoding
threads hold the GIL and slow the training step instead of feeding it: 10,000 MNIST PNG files
took 2.7 s in two threads against 1.3 s in one. Worker processes decode beside the step, as a
DataLoader's workers do.

A worker is `python -m layerc.data.workers`, started once a process when a job has enough
files to repay its start-up (`MIN_FILES`). It reads one request a line on stdin, a JSON object
{"decoder": ..., "paths": [...], "headers": bool}, and answers on stdout with a JSON line
{"shape", "dtype", "bad", "error"}, followed by the decoded array's raw bytes (`bad`: the
files left out, [position, path, reason]; with "headers" it only checks the files' headers
and `bad` is [path, reason]). Nothing is pickled. A worker ignores Ctrl-C (the job's own process handles it) and exits when its stdin
closes, so a job that is killed leaves no worker behind. A worker that dies is not used again:
its request is decoded in the calling thread instead.

`LAYERC_DECODE_PROCESSES=N` sets the number of workers (`0`: decode in threads).
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import subprocess
import sys
import threading

MIN_FILES = 2048  # fewer files decode in less time than the workers take to start
CHUNK = 1024  # files a header-check request holds


def processes() -> int:
    """Worker processes to use: `LAYERC_DECODE_PROCESSES`, else one a core (at most 4; none on one core)."""
    given = os.environ.get("LAYERC_DECODE_PROCESSES", "").strip()
    if given.isdigit():
        return int(given)
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(4, n) if n > 1 else 0


class Pool:
    """Worker processes, each answering one request at a time; `ask` may be called from any thread."""

    def __init__(self, n: int):
        self.idle: queue.Queue = queue.Queue()
        self.started: list[subprocess.Popen] = []
        self.alive, self.counting = 0, threading.Lock()
        for _ in range(n):
            self._start()

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.Popen([sys.executable, "-m", "layerc.data.workers"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.started.append(proc)
        self.alive += 1
        self.idle.put(proc)

    def _take(self) -> subprocess.Popen | None:
        """An idle worker, waiting for one while any is alive."""
        while self.alive:
            try:
                return self.idle.get(timeout=0.2)
            except queue.Empty:
                pass
        return None

    def ask(self, decoder, paths: list, headers: bool = False):
        """A worker's answer: (x, bad) as `stream.decode_chunk(decoder, paths, skip)` with the
        decoder's bad-file error skipped, or with `headers` the (path, reason) of the files whose
        header is not an image's (images.check_headers); None if the worker stopped (the caller
        then does the work itself)."""
        proc = self._take()
        if proc is None:
            return None
        try:
            request = {"decoder": decoder.remote, "paths": [str(p) for p in paths], "headers": headers}
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            head = json.loads(proc.stdout.readline())
            x = None
            if head["shape"] is not None:
                import numpy as np

                dtype = np.dtype(head["dtype"])
                buffer = bytearray(dtype.itemsize * int(np.prod(head["shape"], dtype=np.int64)))
                if proc.stdout.readinto(buffer) != len(buffer):
                    raise EOFError("the worker stopped mid-answer")
                x = np.frombuffer(buffer, dtype).reshape(head["shape"])
        except (OSError, ValueError, KeyError, EOFError):  # the worker stopped: not used again
            proc.kill()
            proc.wait()
            with self.counting:
                self.alive -= 1
            return None
        self.idle.put(proc)
        if head["error"] is not None:
            from .errors import DataError

            raise DataError(head["error"])
        bad = [tuple(b) for b in head["bad"]]
        return bad if headers else (x, bad)

    def close(self) -> None:
        for proc in self.started:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in self.started:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.started = []


_pool: Pool | None = None
_lock = threading.Lock()
_unavailable = False


def pool(files: int) -> Pool | None:
    """The worker processes for decoding `files` files, started on first use; None when
    threads should decode (too few files, workers turned off, or they cannot start here)."""
    global _pool, _unavailable
    n = processes()
    if files < MIN_FILES or n == 0 or _unavailable:
        return None
    with _lock:
        if _pool is None:
            try:
                _pool = Pool(n)
            except OSError:  # no interpreter to start here: threads from now on
                _unavailable = True
                return None
            atexit.register(shutdown)
    return _pool if _pool.alive else None


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None


def _pool_for(decode, files: int) -> Pool | None:
    """The workers, when `decode` can be rebuilt in one (a JSON `remote` description) and
    `files` are enough to start them for."""
    return pool(files) if getattr(decode, "remote", None) is not None else None


def decode_chunk(decode, paths: list, skip: tuple = (), files: int | None = None, name_errors: bool = False):
    """`stream.decode_chunk(decode, paths, skip, name_errors)`, by a worker process when `decode` can be
    rebuilt in one (it has a JSON `remote` description) and the job decodes enough files
    (`files`, default len(paths)) to start the workers for."""
    from .stream import decode_chunk as decode_here

    workers = _pool_for(decode, len(paths) if files is None else files)
    answer = workers.ask(decode, paths) if workers is not None else None
    if answer is None:
        return decode_here(decode, paths, skip, name_errors)
    x, bad = answer
    if bad and not issubclass(decode.bad_file, skip):
        from .errors import DataError

        _, path, reason = bad[0]
        raise DataError(f"{path}: {reason}")
    return x, bad


def check_headers(decode, paths: list, threads: int) -> list[tuple[str, str]]:
    """`images.check_headers(paths)`: (path, reason) of each file whose header cannot be read
    as an image, by the worker processes when there are enough files, `CHUNK` files a request."""
    from concurrent.futures import ThreadPoolExecutor

    from .images import check_headers as check_here

    workers = _pool_for(decode, len(paths))
    if workers is None:
        return check_here(paths)

    def check(chunk):
        answer = workers.ask(decode, chunk, headers=True)
        return check_here(chunk) if answer is None else answer

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="layerc-check") as run:
        return [b for bad in run.map(check, [paths[s:s + CHUNK] for s in range(0, len(paths), CHUNK)]) for b in bad]


# ---- the worker ----------------------------------------------------------------------------

def _serve(stdin, stdout) -> None:
    import numpy as np

    from .images import check_headers, decoder_from
    from .stream import decode_chunk as decode_here

    decoders: dict[str, object] = {}
    for line in stdin:
        request = json.loads(line)
        key = json.dumps(request["decoder"], sort_keys=True)
        if key not in decoders:
            decoders[key] = decoder_from(request["decoder"])
        decode = decoders[key]
        x, bad, error = None, [], None
        try:
            if request["headers"]:
                bad = check_headers(request["paths"])
            else:
                x, bad = decode_here(decode, request["paths"], (decode.bad_file,), name_errors=True)
        except Exception as e:  # one line for the job to raise
            error = str(e) or type(e).__name__
        head = {"shape": None if x is None else list(x.shape), "dtype": None if x is None else x.dtype.str,
                "bad": bad, "error": error}
        stdout.write(json.dumps(head).encode() + b"\n")
        if x is not None:
            stdout.write(memoryview(np.ascontiguousarray(x)).cast("B"))
        stdout.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve(sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
