"""Matplotlib figures of an evaluation, embedded as base64 PNG (no file or network needed to view them).

Figures are made with :class:`matplotlib.figure.Figure` directly, never pyplot, so no global state changes
and no display is needed.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..metrics import roc_curve, threshold_sweep

PALETTE = {
    "normal": "#4C78A8",
    "anomaly": "#E45756",
    "threshold": "#222222",
    "precision": "#4C78A8",
    "recall": "#F58518",
    "f1": "#54A24B",
    "train": "#4C78A8",
    "val": "#F58518",
    "other": "#B0B0B0",
}
STYLE = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "legend.frameon": False,
}
F = TypeVar("F", bound=Callable[..., Figure])


def styled(fn: F) -> F:
    """Make the figure under the report's style (restored afterwards: no global change is left behind)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: Most points drawn on a curve; longer curves are thinned evenly (the ends are kept).
MAX_POINTS = 2000


def time_axis(ax: Any, timed: bool) -> None:
    """Ticks of a time axis that never overlap: concise dates (the year or day said once, not on every
    tick) for timestamps, whole numbers for steps, rows and epochs."""
    if timed:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))


def new_figure(width: float = 5.2, height: float = 3.4) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def to_data_uri(fig: Figure, dpi: int = 120) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thin(*arrays: np.ndarray) -> list[np.ndarray]:
    n = arrays[0].size
    if n <= MAX_POINTS:
        return list(arrays)
    idx = np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))
    return [a[idx] for a in arrays]


def _log_scale(values: np.ndarray) -> bool:
    """Whether ``values`` want a log axis: their positive part spans more than two decades between its 1 %
    and 99 % quantiles (zeros, such as the warm-up scores of a series, are drawn at the axis' left edge)."""
    v = values[np.isfinite(values)]
    v = v[v > 0]
    return v.size > 1 and np.quantile(v, 0.99) / max(np.quantile(v, 0.01), 1e-300) > 100


@styled
def score_distribution(
    scores: np.ndarray,
    labels: np.ndarray | None,
    threshold: float,
    calibration: np.ndarray | None = None,
) -> Figure:
    """Histograms of normal and anomalous scores (or all scores and held-out normal ones) with the threshold."""
    fig, ax = new_figure()
    allv = np.r_[scores, threshold] if calibration is None else np.r_[scores, calibration, threshold]
    allv = allv[np.isfinite(allv)]
    log = _log_scale(allv)
    lo, hi = np.min(allv), np.max(allv)
    n_low = 0
    if log:  # non-positive scores are drawn in the first bin, and counted in the legend
        lo = float(np.min(allv[allv > 0]))
        n_low = int((scores <= 0).sum())
        scores = np.maximum(scores, lo)
        calibration = None if calibration is None else np.maximum(calibration, lo)
    bins = np.geomspace(lo, hi, 60) if log else np.linspace(lo, hi, 60)
    if labels is not None and 0 < labels.sum() < labels.size:
        groups = [
            ("normal", scores[labels == 0], PALETTE["normal"]),
            ("anomalous", scores[labels == 1], PALETTE["anomaly"]),
        ]
    else:
        groups = [("all rows", scores, PALETTE["normal"])]
        if calibration is not None and calibration.size:
            groups.append(("held-out normal (calibration)", calibration, PALETTE["other"]))
    for name, values, color in groups:
        ax.hist(values, bins=bins, density=True, alpha=0.55, color=color, label=f"{name} (n={values.size:,})")
    ax.axvline(threshold, color=PALETTE["threshold"], lw=1.5, ls="--", label=f"threshold {threshold:.4g}")
    n_flagged = int((scores > threshold).sum())
    if hi > threshold:
        share = n_flagged / max(scores.size, 1)
        label = f"flagged: {n_flagged:,} ({share:.1%})"
        ax.axvspan(threshold, hi, color=PALETTE["threshold"], alpha=0.08, label=label)
    if log:
        ax.set_xscale("log")
        if n_low:
            ax.plot([], [], " ", label=f"{n_low:,} scores ≤ 0 drawn at the left edge")
    ax.set_xlabel("anomaly score (higher = more anomalous)" + (", log axis" if log else ""))
    ax.set_ylabel("density")
    ax.legend(loc="upper right")
    return fig


@styled
def roc(
    scores: np.ndarray, labels: np.ndarray, flags: np.ndarray, others: dict[str, np.ndarray] | None = None
) -> Figure:
    """ROC curve with the operating point of the current threshold (other detectors in grey)."""
    fig, ax = new_figure(4.1, 3.5)
    for i, (name, s) in enumerate((others or {}).items()):
        fpr, tpr, _ = roc_curve(labels, s)
        fpr, tpr = _thin(fpr, tpr)
        ax.plot(fpr, tpr, color=PALETTE["other"], lw=1, ls=("-", "--", ":", "-.")[i % 4], label=name)
    fpr, tpr, _ = roc_curve(labels, scores)
    fpr, tpr = _thin(fpr, tpr)
    ax.plot(fpr, tpr, color=PALETTE["normal"], lw=2, label="this model")
    op_fpr = float((flags & (labels == 0)).sum() / max((labels == 0).sum(), 1))
    op_tpr = float((flags & (labels == 1)).sum() / max((labels == 1).sum(), 1))
    ax.plot(
        [op_fpr], [op_tpr], "o", color=PALETTE["anomaly"], ms=8, label=f"threshold (FPR {op_fpr:.3f}, TPR {op_tpr:.3f})"
    )
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false-positive rate", ylabel="true-positive rate (recall)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


@styled
def precision_recall(
    scores: np.ndarray, labels: np.ndarray, flags: np.ndarray, others: dict[str, np.ndarray] | None = None
) -> Figure:
    """Precision-recall curve with the operating point and the share of anomalies as the chance line."""
    fig, ax = new_figure(4.1, 3.5)
    for i, (name, s) in enumerate((others or {}).items()):
        sw = threshold_sweep(labels, s)
        r, p = _thin(sw.recall, sw.precision)
        ax.plot(r, p, color=PALETTE["other"], lw=1, ls=("-", "--", ":", "-.")[i % 4], label=name)
    sw = threshold_sweep(labels, scores)
    r, p = _thin(sw.recall, sw.precision)
    ax.plot(r, p, color=PALETTE["normal"], lw=2, label="this model")
    tp = int((flags & (labels == 1)).sum())
    op_p = tp / max(int(flags.sum()), 1)
    op_r = tp / max(int(labels.sum()), 1)
    ax.plot([op_r], [op_p], "o", color=PALETTE["anomaly"], ms=8, label=f"threshold (P {op_p:.3f}, R {op_r:.3f})")
    ax.axhline(labels.mean(), color="#999999", lw=0.8, ls=":", label=f"chance ({labels.mean():.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.legend(loc="lower left", fontsize=8)
    return fig


@styled
def threshold_tradeoff(scores: np.ndarray, labels: np.ndarray, marks: Sequence[tuple[str, float, str]]) -> Figure:
    """Precision, recall and F1 against the threshold; ``marks`` are (label, threshold, line style)."""
    fig, ax = new_figure(6.4, 3.6)
    sw = threshold_sweep(labels, scores)
    t, p, r, f1 = _thin(sw.thresholds, sw.precision, sw.recall, sw.f1)
    log = _log_scale(np.r_[t, [v for _, v, _ in marks if np.isfinite(v)]])
    if log:  # thresholds at or below 0 are drawn at the left edge of the log axis
        t = np.maximum(t, float(np.min(t[t > 0])))
    ax.plot(t, p, color=PALETTE["precision"], lw=1.8, label="precision")
    ax.plot(t, r, color=PALETTE["recall"], lw=1.8, label="recall")
    ax.plot(t, f1, color=PALETTE["f1"], lw=1.8, label="F1")
    for name, value, style in marks:
        if np.isfinite(value):
            ax.axvline(value, color=PALETTE["threshold"], lw=1.2 if style != "-" else 1.8, ls=style, label=name)
    if log:
        ax.set_xscale("log")
    ax.set(ylim=(0, 1.02), xlabel="threshold (flag score > threshold)", ylabel="value")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


@styled
def confusion_matrix(counts: dict[str, int | float]) -> Figure:
    """The 2 x 2 confusion matrix at the current threshold, with counts and row shares."""
    fig, ax = new_figure(3.6, 3.2)
    m = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]], dtype=float)
    shares = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    for i in range(2):
        for j in range(2):
            color = "white" if shares[i, j] > 0.6 else "#222222"
            ax.text(j, i, f"{int(m[i, j]):,}\n{shares[i, j]:.1%}", ha="center", va="center", color=color, fontsize=10)
    ax.set_xticks([0, 1], ["flagged normal", "flagged anomaly"])
    ax.set_yticks([0, 1], ["normal", "anomaly"])
    ax.set_xlabel("decision")
    ax.set_ylabel("label")
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    return fig


@styled
def training_loss(history: Sequence[dict[str, Any]]) -> Figure:
    """Training and validation loss per epoch; each later ``partial_fit`` run continues the epoch count."""
    fig, ax = new_figure(5.2, 3.2)
    start = 0
    for i, h in enumerate(history):
        train = np.asarray(h.get("train_loss", []), dtype=float)
        val = np.asarray(h.get("val_loss", []), dtype=float)
        epochs = np.arange(start + 1, start + train.size + 1)
        first = i == 0
        ax.plot(epochs, train, color=PALETTE["train"], lw=1.8, label="training loss" if first else None)
        if val.size:
            ax.plot(epochs[: val.size], val, color=PALETTE["val"], lw=1.8, label="validation loss" if first else None)
        best = int(h.get("best_epoch", 0) or 0)
        if best:
            ax.axvline(start + best, color=PALETTE["threshold"], lw=1, ls=":", label="kept weights" if first else None)
        if i:
            ax.axvline(start + 0.5, color=PALETTE["other"], lw=1, ls="--")
        start += train.size
    if _log_scale(np.r_[[v for h in history for v in h.get("train_loss", [])]]):
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="loss")
    time_axis(ax, timed=False)
    ax.legend(loc="upper right")
    return fig
