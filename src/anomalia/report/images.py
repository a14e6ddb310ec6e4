"""The report section of image evaluations: the most anomalous images with their heatmaps, pixel metrics
and the mean score of each kind of defect. Reads ``ev.images`` (an :class:`~anomalia.results.ImagesView`)."""

from __future__ import annotations

from ..results import Evaluation
from .sections import Plot, Section, Table, fmt, register_section


@register_section
def images_section(ev: Evaluation) -> Section | None:
    views = ev.images
    if views is None:
        return None
    sec = Section(
        "images",
        "Most anomalous images and where",
        "The highest-scored test images, each with its anomaly map over it (bright = the model finds that "
        "part unlike the normal images; one colour scale for all, set by the normal calibration images).",
    )
    for i, v in enumerate(views.top):
        label = "" if v.label is None else (" · anomaly" if v.label else " · normal")
        sec.plots.append(
            Plot(
                f"image-{i}",
                f"{v.kind}: score {fmt(v.score, 4)}{' · flagged' if v.flagged else ''}{label}",
                v.overlay,
                caption=v.path,
            )
        )
    pixel = [(k, ev.metrics[k]) for k in ("pixel_roc_auc", "per_region_overlap") if k in ev.metrics]
    if pixel:
        sec.tables.append(
            Table(
                ["pixel metric", "value"],
                [[k.replace("_", " "), fmt(v)] for k, v in pixel],
                key="pixel-metrics",
                caption="Anomaly maps against the ground-truth masks, over every pixel of every test image.",
            )
        )
    kinds = views.mean_score_by_kind
    if kinds:
        sec.tables.append(
            Table(
                ["kind", "mean score"],
                [[k, fmt(v, 4)] for k, v in sorted(kinds.items(), key=lambda kv: kv[1])],
                key="score-by-kind",
            )
        )
    return sec
