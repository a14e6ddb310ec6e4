"""Telemanom's decision procedure on SMD and NAB, and NAB with continual learning.

Run from the project root (the data lives in ../shared/data/timeseries):

    nice -n 19 .venv/bin/python benchmarks/telemanom.py --suite smd
    nice -n 19 .venv/bin/python benchmarks/telemanom.py --suite nab

Protocols
---------
SMD: the forecaster of ``benchmarks/timeseries.py`` (CNN, window 32, fitted on each machine's ``train``). Two
label-free decisions on ``test``: the detector's own POT threshold (risk 1e-3, fitted on held-out training
scores), and Telemanom's procedure (``anomalia.scoring.telemanom.telemanom_threshold``, every setting the
paper's) on the mean absolute prediction error over the 38 channels (and per channel). Beside them, rules on
the channels' error z-scores chosen on three dev machines fixed in advance (``SMD_DEV``): fixed thresholds
from held-out training errors (``SMD_RULES``) and online conformal decisions that follow the machine's own
recent values as ``anomalia watch`` does (``SMD_ONLINE_RULES``); the other machines are reported as held out.
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
from anomalia.scoring import ewma
from anomalia.scoring.telemanom import buffer_flags, telemanom_threshold
from anomalia.stream import Decider, Online


def smd_errors(det: an.BaseDetector, X: np.ndarray) -> np.ndarray:
    """Absolute prediction error per step and channel (standardised units; 0 for the warm-up steps)."""
    _, _, parts = det.score_parts(X)
    assert parts is not None
    return np.sqrt(np.clip(parts, 0.0, None))  # parts: squared standardised errors


def smd_telemanom_flags(errors: np.ndarray, skip: int, per_channel: bool = False) -> np.ndarray:
    """Telemanom's procedure (paper settings) after the ``skip`` warm-up steps: on the mean absolute error over
    channels, or on each channel's errors (flags: their union), as Telemanom runs per channel."""
    e = errors[skip:]
    cols = [e[:, c] for c in range(e.shape[1]) if e[:, c].std() > 0] if per_channel else [e.mean(axis=1)]
    flags = np.zeros(e.shape[0], dtype=bool)
    for col in cols:
        flags |= telemanom_threshold(col, None, min_error=None, history=skip).flags
    return np.r_[np.zeros(skip, dtype=bool), flags]


#: SMD machines on which the label-free rule below is chosen (the first of each machine group, fixed in
#: advance); the others are reported as held out.
SMD_DEV = ["machine-1-6", "machine-2-1", "machine-3-3"]
#: The rules tried on the dev machines: how the channels' error z-scores (against the held-out training
#: errors) combine, the threshold (a quantile of the same statistic on held-out training steps, 1 = their
#: maximum), the EWMA span and Telemanom's error buffer (steps added on each side of a flag).
SMD_RULES = [
    (stat, q, span, buf)
    for stat in ("max", "mean")
    for q in (1.0, 0.999, 0.99)
    for span in (1, 5, 20)
    for buf in (0, 100)
]


#: Online rules: the same statistic decided as ``anomalia watch`` decides a key: conformal p-values against
#: the key's last ``W`` unflagged values (protect; the held-out training statistic until it holds 100),
#: flagged at ``p <= alpha``, so the threshold follows a machine whose normal drifts (no test label used).
SMD_ONLINE_RULES = [
    (stat, alpha, window, span, buf)
    for stat in ("max", "mean")
    for alpha in (0.01, 0.002)
    for window in (500, 2000)
    for span in (1, 5, 20)
    for buf in (0, 100)
]


def _channel_z(errors: np.ndarray, cal: np.ndarray, stat: str, span: int) -> np.ndarray:
    mu, sd = cal.mean(axis=0), cal.std(axis=0) + 1e-3
    z = (errors - mu) / sd
    return ewma(z.max(axis=1) if stat == "max" else z.mean(axis=1), span)


def channel_z_flags(errors: np.ndarray, cal: np.ndarray, skip: int, rule: tuple[Any, ...]) -> np.ndarray:
    """Flags from the channels' error z-scores against held-out training errors ``cal`` (no test labels):
    a fixed threshold (a rule of ``SMD_RULES``) or the online conformal decision (``SMD_ONLINE_RULES``)."""
    if len(rule) == 5:
        stat, alpha, window, span, buf = rule
        need = max(100, int(np.ceil(1.0 / alpha)) - 1)  # the fewest scores on which p <= alpha can happen
        online = Online(alpha=alpha, window=window, min_calibration=need, drift_window=0)
        d = Decider(online, _channel_z(cal, cal, stat, span), None)
        flags = d.decide(d.new_state(), _channel_z(errors[skip:], cal, stat, span)).is_anomaly
        return np.r_[np.zeros(skip, dtype=bool), buffer_flags(np.asarray(flags, dtype=bool), buf)]
    stat, q, span, buf = rule
    threshold = float(np.quantile(_channel_z(cal, cal, stat, span), q))
    s = _channel_z(errors[skip:], cal, stat, span)
    return np.r_[np.zeros(skip, dtype=bool), buffer_flags(s > threshold, buf)]


def _rule_label(rule: tuple[Any, ...]) -> str:
    if len(rule) == 5:
        return f"online conformal ({rule[0]}, alpha {rule[1]:g}, W {rule[2]}, EWMA {rule[3]}, buffer {rule[4]})"
    return f"channel z ({rule[0]}, q {rule[1]:g}, EWMA {rule[2]}, buffer {rule[3]})"


SMD_HEADER = [
    "machine", "decision", "point P", "point R", "point F1", "event P", "event R", "event F1",
    "PA-F1 (optimistic)", "found", "events", "false-alarm events",
]  # fmt: skip


def _smd_row(y: np.ndarray, flags: np.ndarray) -> list[float]:
    p, r, f1 = tsm.point_prf(y, flags)
    ev = tsm.event_prf(y, flags)
    _, _, pa = tsm.point_adjusted_prf(y, flags)
    return [p, r, f1, ev["precision"], ev["recall"], ev["f1"], pa, ev["found"], ev["events"], ev["false_alarm_events"]]


def smd_suite(machines: list[str], cache: Path | None) -> str:
    cpu0 = time.process_time()
    data: dict[str, dict[str, Any]] = {}
    fit_rows = []
    for m in machines:
        z = np.load(tsb.TS / "smd" / f"{m}.npz")
        train, test, y = z["train"].astype(np.float32), z["test"].astype(np.float32), z["test_label"].astype(int)
        c0 = time.process_time()
        det = tsb.smd_detector().fit(train)
        fit_cpu = time.process_time() - c0
        skip = det.span - 1
        errors = smd_errors(det, test)
        cal = smd_errors(det, train[det.n_train_rows_ - skip :])[skip:]  # the held-out training steps
        data[m] = {"y": y, "errors": errors, "cal": cal, "skip": skip, "pot": det.is_anomaly(test)}
        if cache is not None:
            np.savez(cache / f"smd_{m}.npz", **data[m])
        fit_rows.append([m, fit_cpu])
        print(m, f"fit {fit_cpu:.0f} CPU s", flush=True)
    dev = [m for m in machines if m in SMD_DEV]

    def rule_f1(rule: tuple[Any, ...], ms: list[str]) -> float:
        return float(np.mean([
            tsm.event_prf(data[m]["y"], channel_z_flags(data[m]["errors"], data[m]["cal"], data[m]["skip"], rule))["f1"]
            for m in ms
        ]))  # fmt: skip

    tried = [(rule_f1(rule, dev), rule) for rule in SMD_RULES] if dev else []
    best_dev, best = max(tried, key=lambda t: t[0]) if tried else (float("nan"), ("max", 1.0, 20, 100))
    label_best = _rule_label(best)
    online = [(rule_f1(rule, dev), rule) for rule in SMD_ONLINE_RULES] if dev else []
    best_dev_online, best_online = max(online, key=lambda t: t[0]) if online else (float("nan"), SMD_ONLINE_RULES[0])
    label_online = _rule_label(best_online)
    rows: list[list[object]] = []
    groups: dict[tuple[str, str], list[list[float]]] = {}
    for m in machines:
        d = data[m]
        decisions = {
            "POT risk 1e-3": d["pot"],
            "POT risk 1e-3 + buffer 100": buffer_flags(d["pot"], 100),
            "Telemanom (mean error)": smd_telemanom_flags(d["errors"], d["skip"]),
            "Telemanom (per channel)": smd_telemanom_flags(d["errors"], d["skip"], per_channel=True),
            label_best: channel_z_flags(d["errors"], d["cal"], d["skip"], best),
            label_online: channel_z_flags(d["errors"], d["cal"], d["skip"], best_online),
        }
        part = "dev" if m in SMD_DEV else "held out"
        for label, flags in decisions.items():
            vals = _smd_row(d["y"], flags)
            rows.append([m, label, *vals[:7], *(int(v) for v in vals[7:])])
            groups.setdefault((part, label), []).append(vals)
            groups.setdefault(("all 8" if len(machines) == 8 else "all", label), []).append(vals)
    means = [[f"mean, {part} ({len(v)})", label, *np.mean(v, axis=0)[:7].tolist(), *np.sum(v, axis=0)[7:].astype(int)]
             for (part, label), v in groups.items()]  # fmt: skip
    return "\n\n".join(
        [
            "**SMD, label-free decisions** (CNN forecaster fitted on train; nothing is fitted on test labels)",
            markdown_table(SMD_HEADER, means),
            f"Rule chosen on the dev machines ({', '.join(dev)}) among {len(SMD_RULES)} fixed thresholds (event F1 "
            f"there {best_dev:.3f}): {label_best}; among {len(SMD_ONLINE_RULES)} online conformal decisions "
            f"(event F1 there {best_dev_online:.3f}): {label_online}.",
            "Per machine:",
            markdown_table(SMD_HEADER, rows),
            f"PA-F1 note: {tsm.PA_NOTE}.",
            markdown_table(["machine", "fit CPU s"], fit_rows),
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
            # NAB counts every flagged step as a detection: a Telemanom sequence is one alarm, at its first step
            tele_alarms = [tsb.first_alarms(f) for f in tele]
            for tlabel, flags, alarms in (
                (f"z >= {tsb.FIXED_Z:g} (fixed)", fixed, fixed), ("Telemanom", tele, tele_alarms)
            ):
                free.append([label, tlabel] + [nabm.nab_score(alarms, windows, profiles[p]) for p in profiles])
                events.append([label, tlabel, *_nab_events(flags, series)])
            speed.append([label, cpu])
            print(label, f"{cpu:.0f} CPU s", proto[-1][1], flush=True)
    for mode in modes if len(names) > 1 else []:  # per mode, the mean of the detectors' z: still causal
        members = [f"{name} ({mode})" for name in names]
        label = "mean z of " + " + ".join(members)
        scores = [tsb.onset(np.mean(z, axis=0)) for z in zip(*(zs[k] for k in members), strict=True)]
        row = [label]
        for prof in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
            thr, best = nabm.nab_sweep(scores, windows, profiles[prof]).best
            row += [best, thr]
        proto.append(row)
        fixed = [tsb.first_alarms(s >= tsb.FIXED_Z) for s in scores]
        fixed_label = f"z >= {tsb.FIXED_Z:g} (fixed)"
        free.append([label, fixed_label] + [nabm.nab_score(fixed, windows, profiles[p]) for p in profiles])
        events.append([label, fixed_label, *_nab_events(fixed, series)])
    return "\n\n".join(
        [
            "**NAB, NAB's protocol** (one threshold per profile for the whole corpus, chosen to maximise the score)",
            markdown_table(["detector", "standard", "thr", "low FP", "thr", "low FN", "thr"], proto),
            "**NAB, label-free decisions** (z >= 5 fixed in advance with alarms within 100 steps of the previous "
            "one dropped; or Telemanom's procedure, paper settings, on the raw errors: one alarm at the start of "
            "each sequence)",
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
