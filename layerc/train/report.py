"""A classification report: per-class precision, recall, F1 and support, macro and weighted
averages and the confusion matrix, from a classifier's outputs on a labelled split.

    report = classification_report(true_ids, predicted_ids, n_classes, names)
"""
from __future__ import annotations

import numpy as np

from ..data.peek import BINARY, CATEGORICAL, REGRESSION, SPARSE, loss_task

PLOT_EXTRA = 'drawing needs matplotlib: pip install "layerc[plot]"'


class ReportError(ValueError):
    """A report that cannot be made for this model or data (one line for the user)."""


def check_classifier(loss_name: str) -> str:
    """The loss's task; raises ReportError for a regression loss."""
    task = loss_task(loss_name)
    if task in (None, REGRESSION):
        raise ReportError(f"--report is for classifiers; the loss {loss_name} is a regression loss "
                          "(its metrics are the report)")
    return task


def class_ids(y, outputs, task: str, from_logits: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """(true class ids, predicted class ids, number of classes) of a split.

    A binary classifier's single unit counts as two classes (0 below the threshold, 1 above).

    Shapes: y (N,) ids or (N, k) one-hot or (N, 1) binary; outputs (N, k) or (N, 1); any
    axes between (sequences) are flattened, one prediction a step.
    """
    out = np.asarray(outputs)
    y = np.asarray(y)
    if task == BINARY:
        if out.shape[-1] != 1:
            raise ReportError(f"a binary loss with {out.shape[-1]} outputs is multi-label; --report counts "
                              "one class per sample (one sigmoid unit)")
        threshold = 0.0 if from_logits else 0.5
        return y.reshape(-1).astype(np.int64), (out.reshape(-1) > threshold).astype(np.int64), 2
    k = out.shape[-1]
    pred = out.reshape(-1, k).argmax(axis=1)
    true = y.reshape(-1, k).argmax(axis=1) if task == CATEGORICAL and y.shape == out.shape else y.reshape(-1)
    return true.astype(np.int64), pred, k


def confusion_matrix(true, pred, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Shapes: true, pred (N,) class ids -> (n_classes, n_classes) int64, rows the true class."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (np.asarray(true, np.int64), np.asarray(pred, np.int64)), 1)
    return cm


def classification_report(true, pred, n_classes: int, names=None) -> dict:
    """Per-class and averaged precision, recall and F1 (0 where undefined), support, accuracy
    and the confusion matrix (rows: true class, columns: predicted), JSON-serialisable."""
    return confusion_report(confusion_matrix(true, pred, n_classes), names)


def confusion_report(cm: np.ndarray, names=None) -> dict:
    """`classification_report` from the confusion matrix alone (however it was counted)."""
    n_classes = len(cm)
    names = [str(n) for n in names][:n_classes] if names else []
    names += [str(i) for i in range(len(names), n_classes)]
    tp, support, predicted = np.diag(cm).astype(float), cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n_classes), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(n_classes), where=both > 0)
    per_class = [{"class": n, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for n, p, r, f, s in zip(names, precision, recall, f1, support)]
    total = int(support.sum())
    weights = support / max(total, 1)

    def average(w):
        return {"precision": float(precision @ w), "recall": float(recall @ w), "f1": float(f1 @ w),
                "support": total}

    return {"classes": names, "per_class": per_class, "accuracy": float(tp.sum() / max(total, 1)),
            "macro_avg": average(np.full(n_classes, 1 / n_classes)), "weighted_avg": average(weights),
            "confusion_matrix": cm.tolist()}


def split_report(model, train_spec, x, y, fitted: dict, names=None) -> dict:
    """The report of a model on one split (x, y as the loader prepared them), counted batch by
    batch (the batches `model.predict` takes), so a streamed split is read as it goes, never
    whole (data/stream.py)."""
    from ..data.stream import batches

    task = fitted.get("task") or loss_task(train_spec.one_loss().type)
    if task in (None, REGRESSION):
        check_classifier(train_spec.one_loss().type)
    from_logits = bool(getattr(train_spec.one_loss(), "from_logits", False))
    size = train_spec.batch_size
    cm = 0
    with batches([x], [y], [slice(s, s + size) for s in range(0, len(y), size)]) as reader:
        for _, (xb,), (yb,) in reader:
            true, pred, n = class_ids(yb, model.predict(xb, batch_size=size), task, from_logits)
            cm = cm + confusion_matrix(true, pred, n)
    return confusion_report(cm, names)


def classifying_outputs(names, train_spec) -> dict:
    """{output: task} of the outputs whose loss is a classifier's; raises ReportError if none."""
    tasks = {name: loss_task(train_spec.loss_for(name).type) for name in names}
    chosen = {name: task for name, task in tasks.items() if task not in (None, REGRESSION)}
    if not chosen:
        raise ReportError(f"--report is for classifiers; every output of this model ({', '.join(tasks)}) "
                          "has a regression loss (its metrics are the report)")
    return chosen


def output_reports(model, train_spec, x, y) -> dict:
    """{output name: its report} for each output of a model with several whose loss is a
    classifier's (a regression output's metrics are its report); raises ReportError if none.

    Shapes: x as the model takes it; y one array per output, in the model's output order."""
    tasks = classifying_outputs(model.output_names, train_spec)
    outputs = dict(zip(model.output_names, model.predict(x)))
    targets = dict(zip(model.output_names, y))
    reports = {}
    for name in tasks:
        from_logits = bool(getattr(train_spec.loss_for(name), "from_logits", False))
        true, pred, n = class_ids(targets[name], outputs[name], tasks[name], from_logits)
        reports[name] = classification_report(true, pred, n)
    return reports


def confusion_figure(report: dict):
    """A matplotlib Figure of the confusion matrix as a heat map, counts in the cells (Agg)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError(PLOT_EXTRA) from None

    cm = np.asarray(report["confusion_matrix"])
    names = report["classes"]
    n = len(names)
    side = min(12.0, 2.5 + 0.55 * n)
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(fig)  # no display: the Agg canvas, whatever matplotlib's default backend
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right" if
                  max(map(len, names)) > 3 else "center")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix ({int(cm.sum()):,} samples, accuracy {np.trace(cm) / max(cm.sum(), 1):.2%})")
    if n <= 30:
        high = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{cm[i, j]:,}", ha="center", va="center", fontsize=8 if n > 10 else 10,
                        color="white" if cm[i, j] > high else "black")
    fig.tight_layout()
    return fig


def check_plot(path) -> str:
    """The image format of `path` (png, svg, pdf), with matplotlib importable; raises ReportError."""
    import importlib.util
    from pathlib import Path

    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise ReportError(f"--plot {path}: give a .png, .svg or .pdf file")
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # in sys.modules as None: made unimportable
        found = False
    if not found:
        raise ReportError(PLOT_EXTRA)
    return suffix


def plot_confusion_matrix(report: dict, path) -> None:
    """Draw the confusion matrix into `path` (.png, .svg or .pdf, by its suffix), atomically."""
    import io
    from pathlib import Path

    from ..runs import atomic_write

    suffix = check_plot(path)
    fig = confusion_figure(report)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=suffix)
    atomic_write(Path(path), buffer.getvalue())
