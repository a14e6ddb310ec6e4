"""**absorb**: learn operator-approved new normal data as a new model version, behind a validation gate.

:func:`absorb` loads the served model twice (current and candidate), splits the approved rows into a part
to learn (``1 - holdout``) and a held-out part (the last rows: contiguous for series), and calls the
candidate's ``partial_fit`` on the part to learn. For a series, isolated spikes in the part to learn are
replaced by the median of their neighbourhood first (:func:`anomalia.data.series.replace_spikes`, the
classic Hampel filter: 3 steps either side, 5 robust standard deviations): an operator approves a
stretch of time as the new normal, not the anomalies inside it, and a series model would learn those as
patterns (measured in ``benchmarks/stream.py shift``). ``partial_fit`` replays the old normal rows the model
keeps (models fitted with ``keep_rows=True``, as ``anomalia fit --set keep_rows=true``), so the old regime is
not forgotten, and recalibrates on old and new held-out rows. The candidate is saved as a new version
(:mod:`anomalia.stream.versions`) and promoted only when the gate passes:

- old regime: its false-alarm rate on the model's own held-out normal rows is at most
  ``max(2 alpha, current + alpha)``;
- new regime: its false-alarm rate on the held-out approved rows is at most ``max(2 alpha, current)``;
- the recently flagged points that nobody approved (``flagged``): it still flags at least 90 % of those
  the current version flags — adapting must not learn the anomalies.

``alpha`` is the model's false-alarm target (its ``false-alarm:A`` threshold; 0.01 otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._core import InputError
from ..data.series import replace_spikes
from ..model import Model
from ..scoring import FalseAlarmRate
from . import versions

#: Share of the approved rows held out for the gate.
HOLDOUT = 0.25
#: Steps either side of a value that judge whether it is a spike (the Hampel filter's usual window of 7).
SPIKE_HALF_WIDTH = 3
#: Share of the currently flagged points a candidate must still flag.
KEEP_FLAGGED = 0.9


@dataclass
class AdaptResult:
    """What :func:`absorb` did: the versions, the gate's measurements and whether it promoted."""

    previous: str
    candidate: str
    promoted: bool
    gate: dict[str, Any] = field(default_factory=dict)


def _alpha(model: Model) -> float:
    thr = model.detector.threshold_
    return float(thr.alpha) if isinstance(thr, FalseAlarmRate) else 0.01


def _flags(model: Model, data: Any) -> np.ndarray:
    return np.asarray(model.score(data, explain="none").is_anomaly, dtype=bool)


def _split(data: Any, holdout: float, series: bool, seed: int) -> tuple[Any, Any]:
    n = len(data)
    n_hold = max(1, round(holdout * n))
    if series:
        return data.iloc[: n - n_hold], data.iloc[n - n_hold :]
    order = np.random.default_rng(seed).permutation(n)
    learn, hold = np.sort(order[n_hold:]), np.sort(order[:n_hold])
    take = data.iloc if hasattr(data, "iloc") else data
    return take[learn], take[hold]


def absorb(
    model_path: str | Path,
    new_normal: Any,
    *,
    flagged: Any = None,
    holdout: float = HOLDOUT,
    seed: int = 0,
    promote: bool = True,
) -> AdaptResult:
    """Learn ``new_normal`` (a DataFrame of approved rows, or a series frame) as a new version; see the module
    docstring. ``flagged`` holds recently flagged rows nobody approved (checked by the gate)."""
    folder = Path(model_path)
    current = Model.load(folder)
    if current.input_kind == "images":
        raise InputError("absorb adapts table and series models; image models are re-fitted with `anomalia fit`")
    if len(new_normal) < 8:
        raise InputError(f"absorb needs at least 8 approved new-normal rows; got {len(new_normal)}")
    series = current.input_kind == "series"
    learn, hold = _split(new_normal, holdout, series, seed)
    previous = versions.archive(folder)
    candidate = Model.load(folder)
    det = candidate.detector
    n_spikes = 0
    if series:
        X, n_spikes = replace_spikes(det.as_series(learn), half=SPIKE_HALF_WIDTH)
    else:
        X = candidate.encode(learn)
    det.partial_fit(X)
    alpha = _alpha(current)
    gate: dict[str, Any] = {"alpha": alpha, "n_learned": len(learn), "n_held_out": len(hold)}
    if series:
        gate["n_spikes_replaced"] = n_spikes
    checks: list[bool] = []
    old_rows = getattr(current.detector, "calibration_rows_", None)
    if old_rows is not None and not series:
        f_cur = float(current.detector.is_anomaly(old_rows).mean())
        f_new = float(det.is_anomaly(old_rows).mean())
        gate.update(old_far_current=f_cur, old_far_candidate=f_new)
        checks.append(f_new <= max(2 * alpha, f_cur + alpha))
    else:
        gate["old_regime"] = "not checked: the model keeps no held-out rows (fit with keep_rows=true)"
    f_cur, f_new = float(_flags(current, hold).mean()), float(_flags(candidate, hold).mean())
    gate.update(new_far_current=f_cur, new_far_candidate=f_new)
    checks.append(f_new <= max(2 * alpha, f_cur))
    if flagged is not None and len(flagged):
        was = _flags(current, flagged)
        still = _flags(candidate, flagged) & was
        kept = float(still.sum() / was.sum()) if was.any() else 1.0
        gate.update(flagged_current=int(was.sum()), flagged_still=int(still.sum()), flagged_kept=kept)
        checks.append(kept >= KEEP_FLAGGED)
    gate["passed"] = bool(all(checks))
    version = versions.write_candidate(candidate, folder)
    if promote and gate["passed"]:
        versions.promote(folder, version, gate)
    else:
        versions.record_candidate(folder, version, gate)
    return AdaptResult(previous, version, bool(promote and gate["passed"]), gate)
