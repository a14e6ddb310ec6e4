"""The report section of series evaluations: the series, its score with the threshold, labelled anomaly
windows and flagged steps, and the time-series metrics (PA-F1 only beside the honest ones, with its note).
Reads ``ev.series`` (a :class:`~anomalia.results.SeriesView`)."""

from __future__ import annotations

import numpy as np

from ..metrics.timeseries import ranges
from ..results import Evaluation, SeriesView
from . import figures
from .sections import Plot, Section, Table, fmt, register_section

#: Channels drawn at most (those with the largest share of the flagged steps' scores first).
MAX_CHANNELS = 4


@figures.styled
def series_figure(view: SeriesView) -> figures.Figure:
    """The channels with the largest shares of the flagged steps' scores, above the score and threshold."""
    values, scores = view.values, view.scores
    n = scores.size
    x = view.time if view.time is not None else np.arange(n)
    shares, flags = view.shares, view.flags
    weight = shares[flags].sum(axis=0) if flags.any() else shares.sum(axis=0)
    shown = np.argsort(-weight, kind="stable")[:MAX_CHANNELS]
    fig = figures.Figure(figsize=(9.0, 1.4 * (len(shown) + 1) + 0.6), layout="constrained")
    axes = fig.subplots(len(shown) + 1, 1, sharex=True)
    spans = ranges(view.labels) if view.labels is not None else np.empty((0, 2), int)
    flagged = np.flatnonzero(flags)
    for ax, j in zip(axes[:-1], shown, strict=False):
        ax.plot(x, values[:, j], lw=0.7, color=figures.PALETTE["normal"])
        if flagged.size:
            ax.scatter(x[flagged], values[flagged, j], s=6, color=figures.PALETTE["anomaly"], zorder=3)
        ax.set_ylabel(str(view.channels[j]), rotation=0, ha="right", va="center")
    ax = axes[-1]
    ax.plot(x, scores, lw=0.7, color=figures.PALETTE["threshold"])
    if view.threshold is not None:
        ax.axhline(view.threshold, color=figures.PALETTE["anomaly"], lw=0.8, ls="--", label="threshold")
        ax.legend(loc="upper left")
    ax.set_ylabel("score", rotation=0, ha="right", va="center")
    ax.set_xlabel("time" if view.time is not None else "step")
    figures.time_axis(ax, timed=view.time is not None)  # the axes share x: one locator serves them all
    for a in axes:
        for s, e in spans:
            a.axvspan(x[s], x[min(e, n - 1)], color=figures.PALETTE["anomaly"], alpha=0.15, lw=0)
    return fig


@register_section
def series_section(ev: Evaluation) -> Section | None:
    view = ev.series
    if view is None:
        return None
    sec = Section(
        "series",
        "The series, its score and the flags",
        "Top: the channels with the largest share of the flagged steps' scores (red dots: flagged steps). "
        "Bottom: the anomaly score of each step with the threshold. Shaded: labelled anomaly windows. "
        f"The first {view.warmup} steps have no full window before them and get score 0 (warm-up).",
    )
    image = figures.to_data_uri(series_figure(view))
    sec.plots.append(Plot("series-view", "Series, score, threshold, labelled windows and flags", image))
    m = ev.metrics
    if "point_f1" in m:
        rows = [
            ["point-wise", fmt(m["point_precision"]), fmt(m["point_recall"]), fmt(m["point_f1"])],
            ["event-wise", fmt(m["event_precision"]), fmt(m["event_recall"]), fmt(m["event_f1"])],
            ["range-based (Tatbul et al. 2018)", fmt(m["range_precision"]), fmt(m["range_recall"]), fmt(m["range_f1"])],
            ["point-adjusted (optimistic)", "", "", fmt(m["pa_f1"])],
        ]
        sec.tables.append(
            Table(
                ["metric", "precision", "recall", "F1"],
                rows,
                key="series-metrics",
                caption=f"Events: {int(m['event_events'])} labelled, {int(m['event_found'])} found; "
                f"{int(m['event_false_alarm_events'])} false-alarm events.",
            )
        )
        sec.notes.append(str(view.note))
    return sec
