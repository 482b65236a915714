"""`layerc plot` on real short runs: PNG/SVG/PDF files with the curves in them, the terminal
drawing (plotext), and one line naming the extra when a library is missing."""
import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from layerc.cli import main
from layerc.runs.listing import read_run
from layerc.runs.plot import terminal_plot

from .conftest import layerc

C0, C1 = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's first two colours: run 0, run 1


def colour_pixels(image, rgb, tol=10):
    """A mask of the pixels within `tol` of a colour (an RGBA float image as imread gives)."""
    px = (image[..., :3] * 255).round()
    return (np.abs(px - np.array(rgb)) <= tol).all(axis=-1)


def test_png_has_one_panel_per_metric_with_each_runs_lines(trained, tmp_path):
    out = tmp_path / "curves.png"
    code, text = layerc("plot", trained.finished, trained.faster, "--metric", "loss,accuracy", "--output", out)
    assert code == 0 and f"wrote {out}" in text
    from matplotlib.image import imread

    image = imread(out)
    assert image.shape[1] > image.shape[0] > 200 and out.stat().st_size < 150_000
    assert image[..., :3].std() > 0.05  # not a blank canvas
    half = image.shape[1] // 2
    for rgb in (C0, C1):
        mask = colour_pixels(image, rgb)
        assert mask[:, :half].sum() > 100 and mask[:, half:].sum() > 100  # both panels, both runs


def test_one_run_alone_draws_only_its_colour(trained, tmp_path):
    out = tmp_path / "one.png"
    assert layerc("plot", trained.finished, "-o", out)[0] == 0
    from matplotlib.image import imread

    image = imread(out)
    assert colour_pixels(image, C0).sum() > 200 and colour_pixels(image, C1).sum() == 0


def svg_lines(path):
    """{gid: [(x, y), ...]} of the plotted lines in a matplotlib SVG."""
    ns = {"svg": "http://www.w3.org/2000/svg"}
    lines = {}
    for g in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}g"):
        gid = g.get("id", "")
        if re.fullmatch(r"(train|validation)-\w+-\d+", gid):
            path_el = g.find("svg:path", ns)
            lines[gid] = (path_el.get("style"), [tuple(map(float, p)) for p in re.findall(r"([\d.]+) ([\d.]+)", path_el.get("d"))])
    return lines


def test_svg_has_a_path_per_line_with_a_point_per_epoch(trained, tmp_path):
    out = tmp_path / "curves.svg"
    assert layerc("plot", trained.finished, trained.faster, "--metric", "val_loss", "-o", out)[0] == 0
    lines = svg_lines(out)
    assert set(lines) == {"train-loss-0", "validation-loss-0", "train-loss-1", "validation-loss-1"}
    for gid, (style, points) in lines.items():
        assert f"stroke: #{'1f77b4' if gid.endswith('-0') else 'ff7f0e'}" in style
        assert ("stroke-dasharray" in style) == gid.startswith("validation")
        assert len(points) == 2  # two epochs
    # lower on the page is a smaller loss: the drawn slopes follow metrics.csv
    for i, run in enumerate((trained.finished, trained.faster)):
        history = read_run(run).history
        (_, y1), (_, y2) = lines[f"train-loss-{i}"][1]
        assert (y2 > y1) == (history[1]["loss"] < history[0]["loss"])


def test_pdf_and_unknown_formats(trained, tmp_path, capsys):
    out = tmp_path / "curves.pdf"
    assert layerc("plot", trained.finished, "-o", out)[0] == 0
    assert out.read_bytes().startswith(b"%PDF")
    with pytest.raises(SystemExit) as e:
        main(["plot", str(trained.finished), "-o", str(tmp_path / "curves.jpg")])
    assert e.value.code == 1 and "write the plot to a .png, .svg, .pdf file" in capsys.readouterr().err


def test_unknown_metric_and_non_runs_are_one_line(trained, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["plot", str(trained.finished), "--metric", "f1"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "no run logged 'f1'; the runs logged: loss, accuracy" in err
    with pytest.raises(SystemExit) as e:
        main(["plot", str(tmp_path)])
    assert e.value.code == 1 and "is not a layerc run directory" in capsys.readouterr().err


def test_terminal_plot_draws_the_curves(trained):
    runs = [read_run(trained.finished), read_run(trained.faster)]
    text = terminal_plot(runs, ["loss", "accuracy"], width=120, color=False)
    assert "\x1b[" not in text and "loss" in text and "accuracy" in text and "epoch" in text
    for label in ("1-finished train", "1-finished validation", "2-faster train", "2-faster validation"):
        assert label in text
    assert sum("\u2800" <= ch <= "\u28ff" for ch in text) > 200  # braille line cells
    ticks = [float(t) for t in re.findall(r"^ *(-?[\d.]+)┤", text, re.M)]
    losses = [row[k] for r in runs for row in r.history for k in ("loss", "val_loss")]
    assert f"{max(losses):.2f}" in {f"{t:.2f}" for t in ticks} and f"{min(losses):.2f}" in {f"{t:.2f}" for t in ticks}
    assert "\x1b[" in terminal_plot(runs, ["loss"], width=80, color=True)


def test_plot_without_output_prints_the_text_drawing(trained):
    code, out = layerc("plot", trained.finished)
    assert code == 0 and "validation" in out and "give --output curves.png for an image" in out
    assert sum("\u2800" <= ch <= "\u28ff" for ch in out) > 100


@pytest.mark.parametrize("module, args", [("matplotlib", ["-o", "x.png"]), ("plotext", [])])
def test_a_missing_library_names_the_extra(trained, monkeypatch, capsys, module, args):
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")] + [module]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(SystemExit) as e:
        main(["plot", str(trained.finished), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and module in err[0] and 'pip install "layerc[plot]"' in err[0]
