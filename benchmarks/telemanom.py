"""Telemanom's decision procedure on SMD and NAB, and NAB with continual learning.

Run from the project root (the data lives in ../shared/data/timeseries):

    nice -n 19 .venv/bin/python benchmarks/telemanom.py --suite smd
    nice -n 19 .venv/bin/python benchmarks/telemanom.py --suite nab

Protocols
---------
SMD: the forecaster of ``benchmarks/timeseries.py`` (CNN, window 32, fitted on each machine's ``train``). Two
label-free decisions on ``test``: the detector's own POT threshold (risk 1e-3, fitted on held-out training
scores), and Telemanom's procedure (``anomalia.scoring.telemanom.telemanom_threshold``, every setting the
paper's) on the mean absolute prediction error over the 38 channels. Nothing is chosen on test labels: the
settings are the paper's, so every machine is reported (no dev subset is needed).
NAB: each series is fitted on its probationary period and scored causally as in ``benchmarks/timeseries.py``
(same detectors, same label-free z-score and onset post-processing). Rows: the fixed model; the same
detector learning continually (``anomalia.detectors.continual.continual_scores``: after each block of
steps, ``partial_fit`` on the block when none of its steps was flagged by the label-free rule z >= 5
against the series' past errors, as HTM keeps learning while it detects); and Telemanom's procedure on the
errors (its flags scored by NAB, and event-level P/R/F1 with NAB's windows as the labelled events).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anomalia as an
import timeseries as tsb
from _common import machine, markdown_table
from anomalia.detectors.continual import continual_scores
from anomalia.metrics import nab as nabm
from anomalia.metrics import timeseries as tsm
from anomalia.scoring.telemanom import telemanom_threshold


def smd_errors(det: an.BaseDetector, test: np.ndarray) -> np.ndarray:
    """Mean absolute prediction error over channels, per step (standardised units; 0 for the warm-up)."""
    _, _, parts = det.score_parts(test)
    assert parts is not None
    return np.sqrt(np.clip(parts, 0.0, None)).mean(axis=1)  # parts: squared standardised errors


def smd_telemanom_flags(errors: np.ndarray, skip: int) -> np.ndarray:
    """Telemanom's procedure (paper settings) on the errors after the ``skip`` warm-up steps."""
    res = telemanom_threshold(errors[skip:], None, min_error=None, history=skip)
    return np.r_[np.zeros(skip, dtype=bool), res.flags]


SMD_HEADER = [
    "machine", "decision", "point P", "point R", "point F1", "event P", "event R", "event F1",
    "PA-F1 (optimistic)", "found", "events", "false-alarm events", "fit CPU s",
]  # fmt: skip


def smd_suite(machines: list[str], cache: Path | None) -> str:
    rows: list[list[object]] = []
    sums: dict[str, np.ndarray] = {}
    cpu0 = time.process_time()
    for m in machines:
        z = np.load(tsb.TS / "smd" / f"{m}.npz")
        train, test, y = z["train"].astype(np.float32), z["test"].astype(np.float32), z["test_label"].astype(int)
        c0 = time.process_time()
        det = tsb.smd_detector().fit(train)
        fit_cpu = time.process_time() - c0
        errors = smd_errors(det, test)
        decisions = {"POT risk 1e-3": det.is_anomaly(test), "Telemanom": smd_telemanom_flags(errors, det.span - 1)}
        if cache is not None:
            np.savez(cache / f"smd_{m}.npz", y=y, errors=errors, scores=det.anomaly_score(test), skip=det.span - 1,
                     **{k.split()[0]: v for k, v in decisions.items()})  # fmt: skip
        for label, flags in decisions.items():
            p, r, f1 = tsm.point_prf(y, flags)
            ev = tsm.event_prf(y, flags)
            _, _, pa = tsm.point_adjusted_prf(y, flags)
            vals = np.array([p, r, f1, ev["precision"], ev["recall"], ev["f1"], pa])
            sums[label] = sums.get(label, 0) + vals
            rows.append(
                [m, label, *vals.tolist(), int(ev["found"]), int(ev["events"]), int(ev["false_alarm_events"]), fit_cpu]
            )
        print(m, f"fit {fit_cpu:.0f} CPU s", flush=True)
    for label, s in sums.items():
        rows.append(["mean", label, *(s / len(machines)).tolist(), "", "", "", ""])
    return "\n\n".join(
        [
            "**SMD, label-free decisions** (CNN forecaster fitted on train; POT on held-out training scores, or "
            "Telemanom's procedure with the paper's settings)",
            markdown_table(SMD_HEADER, rows),
            f"PA-F1 note: {tsm.PA_NOTE}.",
            f"(SMD: {time.process_time() - cpu0:.0f} CPU s in this process)",
        ]
    )


# ----------------------------------------------------------------------------------------------- NAB
def _nab_errors(name: str, values: np.ndarray, prob: int, continual: bool) -> np.ndarray:
    try:
        det = tsb.NAB_DETECTORS[name]().fit(values[:prob])
    except an.InputError:  # a constant probationary period, as in timeseries.py
        return np.abs(values[:, 0] - values[0, 0]).astype(np.float64)
    if not continual:
        return det.anomaly_score(values)
    return continual_scores(det, values, start=prob, block=CONTINUAL_BLOCK, flagged=_flagged)


#: Steps scored between two updates of the continual variant (and the steps of each update).
CONTINUAL_BLOCK = 250


def _flagged(scores: np.ndarray, seen: int) -> np.ndarray:
    """The label-free rule on the scores so far: z >= 5 against the series' own past (every step of a rise)."""
    return tsb.nab_z(scores) >= tsb.FIXED_Z


def nab_suite(names: list[str], modes: list[str]) -> str:
    series = tsb.load_nab()
    windows = [w for _, _, w in series]
    profiles = nabm.load_profiles(tsb.TS / "nab" / "config" / "profiles.json")
    proto, free, events, speed = [], [], [], []
    zs: dict[str, list[np.ndarray]] = {}
    for name in names:
        for mode in modes:
            label = f"{name} ({mode})"
            c0 = time.process_time()
            raw = [
                _nab_errors(name, v, nabm.probationary_length(v.shape[0]), mode == "continual") for _, v, _ in series
            ]
            cpu = time.process_time() - c0
            zs[label] = [tsb.nab_z(r) for r in raw]
            scores = [tsb.onset(z) for z in zs[label]]
            row: list[object] = [label]
            for prof in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
                thr, best = nabm.nab_sweep(scores, windows, profiles[prof]).best
                row += [best, thr]
            proto.append(row)
            fixed = [tsb.first_alarms(s >= tsb.FIXED_Z) for s in scores]
            tele = [_telemanom_nab(r, v) for r, (_, v, _) in zip(raw, series, strict=True)]
            for tlabel, flags in ((f"z >= {tsb.FIXED_Z:g} (fixed)", fixed), ("Telemanom", tele)):
                free.append([label, tlabel] + [nabm.nab_score(flags, windows, profiles[p]) for p in profiles])
                events.append([label, tlabel, *_nab_events(flags, series)])
            speed.append([label, cpu])
            print(label, f"{cpu:.0f} CPU s", proto[-1][1], flush=True)
    if len(zs) > 1:
        label = "mean z of " + " + ".join(zs)
        scores = [tsb.onset(np.mean(z, axis=0)) for z in zip(*zs.values(), strict=True)]
        row = [label]
        for prof in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
            thr, best = nabm.nab_sweep(scores, windows, profiles[prof]).best
            row += [best, thr]
        proto.append(row)
        fixed = [tsb.first_alarms(s >= tsb.FIXED_Z) for s in scores]
        fixed_label = f"z >= {tsb.FIXED_Z:g} (fixed)"
        free.append([label, fixed_label] + [nabm.nab_score(fixed, windows, profiles[p]) for p in profiles])
    return "\n\n".join(
        [
            "**NAB, NAB's protocol** (one threshold per profile for the whole corpus, chosen to maximise the score)",
            markdown_table(["detector", "standard", "thr", "low FP", "thr", "low FN", "thr"], proto),
            "**NAB, label-free decisions** (z >= 5 fixed in advance with alarms within 100 steps of the previous "
            "one dropped; or Telemanom's procedure, paper settings, on the raw errors)",
            markdown_table(["detector", "decision", "standard", "low FP", "low FN"], free),
            "**NAB, event level** (each labelled window an event: found when a flag touches it; a flagged run "
            "touching no window is a false-alarm event; the probationary period is left out)",
            markdown_table(["detector", "decision", "event P", "event R", "event F1", "false-alarm events"], events),
            "**NAB CPU seconds** (fit + score of all 58 series, this process)",
            markdown_table(["detector", "CPU s"], speed),
        ]
    )


def _telemanom_nab(raw: np.ndarray, values: np.ndarray) -> np.ndarray:
    skip = int(np.argmax(raw != 0.0)) if (raw != 0.0).any() else 0  # the warm-up steps score exactly 0
    if raw.size - skip < 2:
        return np.zeros(raw.size, dtype=bool)
    res = telemanom_threshold(raw[skip:], values[skip:, 0], history=min(250, skip) if skip else 0, min_error=None)
    return np.r_[np.zeros(skip, dtype=bool), res.flags]


def _nab_events(flags: list[np.ndarray], series: list[Any]) -> list[object]:
    found = n_events = flagged = false = 0
    for f, (_, v, w) in zip(flags, series, strict=True):
        n = v.shape[0]
        skip = nabm.probationary_length(n)
        y = np.zeros(n, dtype=bool)
        for a, b in w:
            y[a : b + 1] = True
        if not y[skip:].any():
            false += len(tsm.ranges(f[skip:]))
            flagged += len(tsm.ranges(f[skip:]))
            continue
        ev = tsm.event_prf(y[skip:], f[skip:])
        found += int(ev["found"])
        n_events += int(ev["events"])
        flagged += int(ev["flagged_events"])
        false += int(ev["false_alarm_events"])
    p = (flagged - false) / flagged if flagged else 0.0
    r = found / n_events if n_events else 0.0
    return [p, r, 2 * p * r / (p + r) if p + r else 0.0, false]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", nargs="+", default=["smd", "nab"], choices=["smd", "nab"])
    ap.add_argument("--machines", nargs="+", default=tsb.SMD_MACHINES)
    ap.add_argument("--nab-detectors", nargs="+", default=["window-autoencoder"], choices=list(tsb.NAB_DETECTORS))
    ap.add_argument("--nab-modes", nargs="+", default=["fixed", "continual"], choices=["fixed", "continual"])
    ap.add_argument("--cache", type=Path, default=None, help="folder for per-machine flags (npz), for inspection")
    args = ap.parse_args(argv)
    if not tsb.TS.exists():
        raise SystemExit(f"{tsb.TS} is absent: the time-series benchmark data lives in ../shared/data")
    print(f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.", flush=True)
    for suite in args.suite:
        text = smd_suite(args.machines, args.cache) if suite == "smd" else nab_suite(args.nab_detectors, args.nab_modes)
        print(text, flush=True)


if __name__ == "__main__":
    main()
