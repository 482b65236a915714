"""The larger fuzzing and kill runs behind the README's Reliability figures.

    python benchmarks/fuzz.py --cases 5000     # mutated specs through validate and summary
    python benchmarks/fuzz.py --kills 50       # SIGKILL a training run at random moments

The test suite runs the same code with a few hundred cases and a few kills.
"""
from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from typer.testing import CliRunner  # noqa: E402

from layerc.cli import app  # noqa: E402
from tests.spec.mutate import mutate  # noqa: E402


def fuzz(cases: int, seed: int) -> None:
    rng = random.Random(seed)
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    runner = CliRunner()
    codes = collections.Counter()
    slowest = 0.0
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.yaml"
        for i in range(cases):
            text = mutate(rng.choice(specs).read_text(), rng)
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            for command in ("validate", "summary"):
                started = time.perf_counter()
                r = runner.invoke(app, [command, str(path)])
                slowest = max(slowest, time.perf_counter() - started)
                codes[(command, r.exit_code)] += 1
                bad = r.exit_code not in (0, 1, 2) or (r.exception and not isinstance(r.exception, SystemExit))
                if bad or "Traceback" in r.output:
                    failures.append((i, command, text[:200], repr(r.exception)))
            if (i + 1) % 500 == 0:
                print(f"{i + 1} cases, {len(failures)} failures", flush=True)
    print(f"fuzzed {cases} mutated specs x 2 commands: exit codes {dict(codes)}; slowest {slowest:.2f}s; "
          f"failures {len(failures)}")
    for f in failures[:10]:
        print("FAIL", f)
    if failures:
        raise SystemExit(1)


def kills(n: int, seed: int) -> None:
    import numpy as np

    from layerc import jobs
    from tests.cli.test_signals import kill_cycle, same_weights
    from tests.conftest import SPEC

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4000, 12)).astype(np.float32)  # epochs long enough to kill mid-way
        np.savez(tmp / "data.npz", x=x, y=(x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5))
        spec = tmp / "tiny.yaml"
        spec.write_text(SPEC.format(epochs=15 * n + 60, lr=0.01))
        whole = jobs.train(spec, run_dir=tmp / "whole").run_dir
        seen = kill_cycle(spec, tmp / "run", kills=n, seed=seed)
        same = same_weights(whole, tmp / "run")
        print(f"{n} SIGKILLs survived: {len(seen)} checkpoints loaded after kills, "
              f"final weights {'identical to' if same else 'DIFFERENT from'} the uninterrupted run")
        if not same:
            raise SystemExit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=0)
    ap.add_argument("--kills", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.cases and not args.kills:
        args.cases = 2000
    if args.cases:
        fuzz(args.cases, args.seed)
    if args.kills:
        kills(args.kills, args.seed)


if __name__ == "__main__":
    main()
