"""One epoch of the seed CNN from a folder of 60,000 PNG files: layerc against PyTorch (issue 21).

    python benchmarks/bench_images.py --torch-python /path/to/venv/bin/python
    python benchmarks/bench_images.py --repeats 3 --folder /tmp/mnist-png --json /tmp/images.json
    python benchmarks/bench_images.py --quick            # 3,000 files, 1 repeat: checks the harness

The 60,000 MNIST training digits (datasets/mnist) are written once as PNG files, one folder
per digit (`--folder`, default `~/.cache/layerc/bench/mnist-png`). Each figure is a fresh
process training `specs/mnist_cnn.yaml` (the seed CNN, batch 128, Adam) for one epoch on that
folder with 10% held out for validation, timed from the start of reading the folder to the end
of the validation pass:

- layerc, cold: `format: images` with an empty decoded-data cache, so every file is decoded
  before the epoch (and the cache is written);
- layerc, cached: the same with the cache filled by an earlier run: the decoded array is loaded;
- layerc, streamed: `data.stream: true`, every batch read and decoded from the files in
  background threads as training goes; its peak resident memory (VmHWM) is the one to state;
- PyTorch: torchvision's `ImageFolder` (`Grayscale()`, `ToTensor()`), `random_split` 54,000 /
  6,000, `DataLoader(batch_size=128, shuffle=True, num_workers=2)` for both parts, the same
  network (benchmarks/bench.py's) and Adam; it decodes every file every epoch, so it has one
  figure. torchvision needs its own torch build: `--torch-python` names the Python of a venv with
  torch and torchvision (default: this one, if it imports torchvision).

The four runs take turns within each repeat, so machine load hits them alike; the figures are
medians over repeats and each ratio the median of the repeats' own PyTorch / layerc ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (the same torch network, idx reader and memory probes)

DEFAULT_FOLDER = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "layerc" / "bench" / "mnist-png"
LAYERC_MODES = ("cold", "cached", "streamed")


def write_folder(folder: Path, n: int) -> Path:
    """The first n MNIST training digits as PNG files in folder/<digit>/, written once."""
    import numpy as np
    from PIL import Image

    done = folder / f".complete-{n}"
    if done.exists():
        return folder
    bench.log(f"[images] writing {n:,} PNG files into {folder}")
    d = ROOT / "datasets" / "mnist"
    x = bench.read_idx(d / "train-images-idx3-ubyte.gz")[:n]
    y = bench.read_idx(d / "train-labels-idx1-ubyte.gz")[:n]
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (pixels, label) in enumerate(zip(x, y)):
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / str(int(label)) / f"{i:05d}.png")
    done.write_text("")
    return folder


def spec_text(folder: Path) -> str:
    """specs/mnist_cnn.yaml with its data read from the PNG folder."""
    import yaml

    spec = yaml.safe_load((ROOT / "specs" / "mnist_cnn.yaml").read_text())
    spec["data"] = {"format": "images", "train": str(folder), "image_size": [28, 28], "color_mode": "grayscale",
                    "rescale": 1 / 255, "validation_split": 0.1}
    spec["train"]["epochs"] = 1
    return yaml.safe_dump(spec, sort_keys=False)


def layerc_child(mode: str, folder: Path) -> dict:
    """One timed layerc run (this process was started for it, with LAYERC_CACHE_DIR set)."""
    from layerc.jobs import train

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "mnist_cnn_png.yaml"
        spec.write_text(spec_text(folder))
        t0 = time.perf_counter()
        out = train(spec, overrides=["data.stream=true"] if mode == "streamed" else [], run_root=Path(tmp) / "runs")
        seconds = time.perf_counter() - t0
    h = out.history[0]
    return {"seconds": seconds, "epoch_seconds": h["seconds"], "val_accuracy": h.get("val_accuracy"),
            "peak_mb": bench.peak_mb()}


def torch_child(folder: Path) -> dict:
    """One timed PyTorch run: ImageFolder + DataLoader(num_workers=2), the same network."""
    import torch
    from torch.utils.data import DataLoader, random_split
    from torchvision import datasets, transforms

    t0 = time.perf_counter()
    data = datasets.ImageFolder(str(folder), transform=transforms.Compose([transforms.Grayscale(),
                                                                           transforms.ToTensor()]))
    n_val = round(len(data) * 0.1)
    train, val = random_split(data, [len(data) - n_val, n_val], generator=torch.Generator().manual_seed(42))
    tm, opt, loss_fn = bench.torch_setup(torch, "cnn")
    tm.train()
    for x, y in DataLoader(train, batch_size=128, shuffle=True, num_workers=2):
        opt.zero_grad()
        loss = loss_fn(tm(x), y)
        loss.backward()
        opt.step()
        loss.item()
    tm.eval()
    right = 0
    with torch.no_grad():
        for x, y in DataLoader(val, batch_size=128, num_workers=2):
            right += int((tm(x).argmax(1) == y).sum())
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "val_accuracy": right / n_val, "peak_mb": bench.peak_mb(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def run_child(python: str, args: list, env: dict) -> dict:
    p = subprocess.run([python, str(Path(__file__).resolve()), *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, **env})
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(folder: Path, repeats: int, torch_python: str | None, work: Path) -> dict:
    warm = work / "cache-warm"
    bench.log("[images] warm-up: fills the cached run's cache (and the page cache)")
    run_child(sys.executable, ["--layerc-child", "cold", str(folder)], {"LAYERC_CACHE_DIR": str(warm)})
    res = {m: [] for m in (*LAYERC_MODES, "pytorch")}
    for r in range(repeats):
        if torch_python:
            res["pytorch"].append(run_child(torch_python, ["--torch-child", str(folder)], {}))
        for mode in LAYERC_MODES:
            cache = {"cold": work / f"cache-cold-{r}", "cached": warm, "streamed": "off"}[mode]
            res[mode].append(run_child(sys.executable, ["--layerc-child", mode, str(folder)],
                                       {"LAYERC_CACHE_DIR": str(cache)}))
        bench.log(f"[images] repeat {r + 1}/{repeats}: " + ", ".join(
            f"{k} {v[-1]['seconds']:.1f} s ({v[-1]['peak_mb']:.0f} MB)" for k, v in res.items() if v))
    return res


def summary(res: dict) -> list[dict]:
    rows = []
    for mode in LAYERC_MODES:
        row = {"run": mode, "layerc_seconds": statistics.median(r["seconds"] for r in res[mode]),
               "layerc_peak_mb": statistics.median(r["peak_mb"] for r in res[mode])}
        if res["pytorch"]:
            row["pytorch_seconds"] = statistics.median(r["seconds"] for r in res["pytorch"])
            row["ratio"] = statistics.median(t["seconds"] / r["seconds"] for t, r in zip(res["pytorch"], res[mode]))
        rows.append(row)
    return rows


def markdown(rows: list[dict], res: dict) -> str:
    lines = ["| layerc run | layerc s | PyTorch s | ratio (PyTorch s / layerc s) | target | layerc peak RSS |",
             "|---|---:|---:|---:|---|---:|"]
    for row in rows:
        ratio = row.get("ratio")
        lines.append(f"| {row['run']} | {row['layerc_seconds']:.1f} | {row.get('pytorch_seconds', float('nan')):.1f} | "
                     f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | "
                     f"{'n/a' if ratio is None else ('≥ 1.0x yes' if ratio >= 1.0 else '≥ 1.0x NO')} | "
                     f"{row['layerc_peak_mb']:.0f} MB |")
    if res["pytorch"]:
        lines.append(f"\nPyTorch's main process peaked at {statistics.median(r['peak_mb'] for r in res['pytorch']):.0f} MB "
                     "(its two loader workers are processes of their own).")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="where the PNG files are written once")
    ap.add_argument("--files", type=int, default=60000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="3,000 files, 1 repeat")
    ap.add_argument("--torch-python", help="a Python with torch and torchvision (default: this one if it has them)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "images.json")
    ap.add_argument("--layerc-child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    ap.add_argument("--torch-child", metavar="FOLDER", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.layerc_child:
        print(json.dumps(layerc_child(args.layerc_child[0], Path(args.layerc_child[1]))))
        return
    if args.torch_child:
        print(json.dumps(torch_child(Path(args.torch_child))))
        return
    if args.quick:
        args.files, args.repeats = 3000, 1
    torch_python = None if args.no_torch else (args.torch_python or _own_torchvision())
    if torch_python is None and not args.no_torch:
        bench.log("[images] no torchvision here: give --torch-python (PyTorch columns read n/a)")
    folder = write_folder(args.folder if args.files == 60000 else args.folder.with_name(f"{args.folder.name}-{args.files}"),
                          args.files)
    with tempfile.TemporaryDirectory() as work:
        res = measure(folder, args.repeats, torch_python, Path(work))
    rows = summary(res)
    load = os.getloadavg()
    m = bench.machine(None)
    if res["pytorch"]:
        m.update(torch=res["pytorch"][0]["torch"], torch_threads=res["pytorch"][0]["threads"])
    out = {"files": args.files, "repeats": args.repeats, "rows": rows, "runs": res,
           "load_average_at_end": load, "time": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": m}
    bench.write_json(args.json, out)
    print(markdown(rows, res))
    print(f"\n- {args.files:,} PNG files, medians of {args.repeats} repeats; 1/5/15-min load average at the end "
          f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}; {bench.machine_line(out['machine'])}")


def _own_torchvision() -> str | None:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return None
    return sys.executable


if __name__ == "__main__":
    main()
