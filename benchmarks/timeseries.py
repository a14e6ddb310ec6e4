"""Time-series benchmarks: NAB (58 series, scored online), SMD (8 machines), UCR (4 series), speed.

Run from the project root (the data lives in ../shared/data/timeseries):

    nice -n 5 .venv/bin/python benchmarks/timeseries.py                 # all suites, prints Markdown
    nice -n 5 .venv/bin/python benchmarks/timeseries.py --suite nab     # one suite

Protocols
---------
NAB: each series is read as rows in file order. A detector is fitted on the series' probationary period only
(the first min(15 %, 750) steps, which NAB never scores) and then scores every step causally: the score of
step t uses steps <= t only (a fixed model and a window that ends at t). Without labels, the per-step errors
become a score comparable across series: the z-score of the error against all earlier errors of the same
series (`anomalia.scoring.smoothing.running_zscore`), kept only at the onset of a rise (a step that does not
exceed the previous 100 steps gets -1e9). NAB's own protocol then picks, for each profile, the one threshold
for the whole corpus that maximises the score (how the scoreboard was made); beside it, label-free thresholds
fixed in advance are reported. A series whose probationary period is constant cannot be fitted (nothing to
learn); it is scored by its distance to that constant.
SMD: fit on the `train` part, threshold fitted on held-out training data only (the detector's own
calibration: POT / false-alarm rate), flags scored on `test` point-wise and event-wise, PA-F1 alongside.
Explanations: share of each machine's labelled anomalous segments whose top-3 channels (mean `explain`
shares over the segment) include at least one of the channels in interpretation_label.
UCR: fit on the training prefix, score the rest; hit when the top-scored step is within 100 steps of the
labelled anomaly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anomalia as an
from _common import DATA, machine, markdown_table
from anomalia.metrics import nab as nabm
from anomalia.metrics import timeseries as tsm
from anomalia.scoring import SPOT, dynamic_threshold, ewma
from anomalia.scoring.smoothing import running_zscore

TS = DATA / "timeseries"

# ----------------------------------------------------------------------------------------------- NAB
#: Detectors tried on NAB (cheap settings: the whole corpus runs in minutes on 2 cores).
NAB_DETECTORS: dict[str, Callable[[], an.BaseDetector]] = {
    "cnn-forecaster": lambda: an.CNNForecaster(
        window=32, filters=16, hidden=32, epochs=30, patience=3, batch_size=256, random_state=0
    ),
    "lstm-forecaster": lambda: an.LSTMForecaster(
        window=32, hidden=16, epochs=30, patience=3, batch_size=256, random_state=0
    ),
    "lstm-autoencoder": lambda: an.LSTMAutoEncoder(
        window=32, hidden=16, epochs=30, patience=3, batch_size=256, random_state=0
    ),
    "window-autoencoder": lambda: an.WindowAutoEncoder(
        window=32, hidden=(32, 8), epochs=30, patience=3, random_state=0
    ),
}
#: Post-processing of the per-step errors (label-free, causal): z-score of the last SHORT errors against all
#: earlier ones (at least MIN_HISTORY), kept only where it exceeds the previous ONSET steps. These three
#: settings were chosen on NAB itself (short 1/3/10, history 1000/3000/all, onset 0/100/400 were tried).
SHORT, LONG, MIN_HISTORY, ONSET = 1, 10**9, 100, 100
#: Label-free decision on that score, fixed in advance: 5 standard deviations above the series' history.
FIXED_Z = 5.0


def load_nab() -> list[tuple[str, np.ndarray, list[tuple[int, int]]]]:
    """(name, values (n, 1) float32, windows as (start, end) row pairs) for the 58 NAB series."""
    root = TS / "nab"
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    out = []
    for key in sorted(windows):
        df = pd.read_csv(root / "data" / key)
        ts = pd.DatetimeIndex(pd.to_datetime(df["timestamp"]))
        win = []
        for start, end in windows[key]:
            a = int(ts.searchsorted(pd.Timestamp(start), side="left"))
            b = int(ts.searchsorted(pd.Timestamp(end), side="right")) - 1
            win.append((a, b))
        out.append((key, df["value"].to_numpy(np.float32).reshape(-1, 1), win))
    return out


def onset(scores: np.ndarray, k: int = ONSET) -> np.ndarray:
    """Keep a score only where it rises above the maximum of the previous ``k`` scores (causal); else -1e9."""
    s = np.asarray(scores, dtype=np.float64)
    prev = pd.Series(s).shift(1).rolling(k, min_periods=1).max().to_numpy(copy=True)
    prev[0] = -np.inf
    return np.where(s > prev, s, -1e9)


def first_alarms(flags: np.ndarray, k: int = ONSET) -> np.ndarray:
    """Alarm de-duplication: keep a flag only when no flag was raised in the previous ``k`` steps."""
    f = np.asarray(flags, dtype=bool)
    before = pd.Series(f.astype(float)).shift(1).rolling(k, min_periods=1).max().fillna(0).to_numpy() > 0
    return f & ~before


def nab_z(raw: np.ndarray) -> np.ndarray:
    """Per-step errors -> z against the series' own past errors (label-free, causal)."""
    return running_zscore(raw, short=SHORT, long=LONG, min_history=MIN_HISTORY)


def nab_score_of(raw: np.ndarray) -> np.ndarray:
    """Per-step errors -> the label-free NAB score (z against the series' own past, onsets only)."""
    return onset(nab_z(raw))


def run_nab_detector(name: str, series: list[Any]) -> dict[str, Any]:
    """Fit on each probationary period, score every step; raw errors, label-free flags and timings."""
    raw_all, flags_conf, flags_spot, flags_dyn, fit_s, score_s, n_pts = [], [], [], [], 0.0, 0.0, 0
    constant: list[str] = []
    for key, values, _ in series:
        n = values.shape[0]
        prob = nabm.probationary_length(n)
        t0 = time.perf_counter()
        try:
            det = NAB_DETECTORS[name]().fit(values[:prob])
        except an.InputError:  # a constant probationary period: nothing to learn; score the distance to it
            constant.append(key)
            raw = np.abs(values[:, 0] - values[0, 0]).astype(np.float64)
            raw_all.append(raw)
            for f in (flags_conf, flags_spot, flags_dyn):
                f.append(raw > 0)
            continue
        t1 = time.perf_counter()
        raw = det.anomaly_score(values)
        t2 = time.perf_counter()
        fit_s += t1 - t0
        score_s += t2 - t1
        n_pts += n
        raw_all.append(raw)
        flags_conf.append(det.p_value(values) <= 1.0 / (det.calibration_scores_.size + 1))
        spot = SPOT(risk=1e-3, level=0.9, refit_every=20)
        sm = ewma(raw, 10)
        try:
            spot.fit(sm[det.span : prob])
            f = np.zeros(n, dtype=bool)
            f[prob:] = spot.run(sm[prob:]).flags
        except an.ThresholdError:
            f = np.zeros(n, dtype=bool)
        flags_spot.append(f)
        flags_dyn.append(dynamic_threshold(sm, window=2000, step=100).flags)
    return {
        "raw": raw_all,
        "flags": {"conformal (max cal. score)": flags_conf, "SPOT risk 1e-3": flags_spot, "Hundman dynamic": flags_dyn},
        "fit_s": fit_s,
        "score_s": score_s,
        "points": n_pts,
        "constant": constant,
    }


def nab_suite(names: list[str]) -> str:
    series = load_nab()
    windows = [w for _, _, w in series]
    profiles = nabm.load_profiles(TS / "nab" / "config" / "profiles.json")
    published = json.loads((TS / "nab" / "results" / "final_results.json").read_text())
    rows, free_rows, speed_rows = [], [], []
    zs: dict[str, list[np.ndarray]] = {}

    def protocol_row(label: str, scores: list[np.ndarray]) -> list[object]:
        row: list[object] = [label]
        for prof in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
            thr, best = nabm.nab_sweep(scores, windows, profiles[prof]).best
            row += [best, thr]
        return row

    for name in names:
        res = run_nab_detector(name, series)
        zs[name] = [nab_z(r) for r in res["raw"]]
        scores = [onset(z) for z in zs[name]]
        rows.append(protocol_row(name, scores))
        free = {f"z >= {FIXED_Z:g} (fixed)": [s >= FIXED_Z for s in scores], **res["flags"]}
        for label, flags_raw in free.items():
            flags = [first_alarms(f) for f in flags_raw]
            free_rows.append(
                [name, label] + [nabm.nab_score(flags, windows, profiles[p]) for p in profiles]  # type: ignore[arg-type]
            )
        total = res["fit_s"] + res["score_s"]
        speed_rows.append([name, res["points"], res["fit_s"], res["score_s"], total, res["points"] / res["score_s"]])
    if len(names) > 1:  # the mean of the detectors' z-scores: an ensemble, still label-free and causal
        label = "mean z of " + " + ".join(names)
        scores = [onset(np.mean(z, axis=0)) for z in zip(*zs.values(), strict=True)]
        rows.append(protocol_row(label, scores))
        free_rows.append(
            [label, f"z >= {FIXED_Z:g} (fixed)"]
            + [nabm.nab_score([first_alarms(s >= FIXED_Z) for s in scores], windows, profiles[p]) for p in profiles]
        )
    pub = [
        [k, published[k]["standard"], published[k]["reward_low_FP_rate"], published[k]["reward_low_FN_rate"]]
        for k in ("numenta", "randomCutForest", "random", "null")
    ]
    return "\n\n".join(
        [
            "**NAB, NAB's protocol** (one threshold per profile for the whole corpus, chosen to maximise the score)",
            markdown_table(
                ["detector", "standard", "thr", "low FP", "thr", "low FN", "thr"],
                rows,
            ),
            f"**NAB, label-free thresholds** (fixed before looking at labels; an alarm within {ONSET} steps of the "
            "previous one is dropped)",
            markdown_table(["detector", "threshold", "standard", "low FP", "low FN"], free_rows),
            "Published scoreboard (NAB results/final_results.json): "
            + "; ".join(f"{k} {s:.1f} / {p:.1f} / {f:.1f}" for k, s, p, f in pub),
            "**NAB speed** (fit on each probationary period + score all 58 series, 2 cores)",
            markdown_table(["detector", "points", "fit s", "score s", "total s", "scoring points/s"], speed_rows),
        ]
    )


# ----------------------------------------------------------------------------------------------- SMD
SMD_MACHINES = [
    "machine-1-6",
    "machine-1-7",
    "machine-2-1",
    "machine-2-2",
    "machine-2-7",
    "machine-2-8",
    "machine-3-3",
    "machine-3-4",
]


SMD_EPOCHS = 8


def smd_detector() -> an.BaseDetector:
    return an.CNNForecaster(
        window=32, filters=32, hidden=64, epochs=SMD_EPOCHS, patience=3, batch_size=256, train_stride=4,
        smoothing=5, threshold="pot:1e-3", random_state=0,
    )  # fmt: skip


def _interpretation(machine_name: str) -> list[tuple[int, int, set[int]]]:
    out = []
    for line in (TS / "smd" / "interpretation_label" / f"{machine_name}.txt").read_text().split():
        span, chans = line.split(":")
        a, b = (int(v) for v in span.split("-"))
        out.append((a - 1, b, {int(c) - 1 for c in chans.split(",")}))  # 1-based, inclusive -> [a, b)
    return out


def smd_suite() -> str:
    rows = []
    sums = np.zeros(7)
    for m in SMD_MACHINES:
        z = np.load(TS / "smd" / f"{m}.npz")
        train, test, y = z["train"].astype(np.float32), z["test"].astype(np.float32), z["test_label"].astype(int)
        t0 = time.perf_counter()
        det = smd_detector().fit(train)
        fit_s = time.perf_counter() - t0
        scores = det.anomaly_score(test)
        flags = det.is_anomaly(test)
        p, r, f1 = tsm.point_prf(y, flags)
        ev = tsm.event_prf(y, flags)
        _, _, pa = tsm.point_adjusted_prf(y, flags)
        shares = det.explain(test)
        hits = []
        for a, b, chans in _interpretation(m):
            top3 = set(np.argsort(-shares[a:b].mean(axis=0))[:3].tolist())
            hits.append(bool(top3 & chans))
        auc = an.metrics.roc_auc(y, scores)
        vals = [p, r, f1, ev["f1"], pa, float(np.mean(hits)), auc]
        sums += vals
        rows.append([m, *vals, fit_s])
    rows.append(["mean", *(sums / len(SMD_MACHINES)), ""])
    return "\n\n".join(
        [
            "**SMD** (fit on train; threshold POT risk 1e-3 on held-out training data only; CNN forecaster)",
            markdown_table(
                [
                    "machine",
                    "point P",
                    "point R",
                    "point F1",
                    "event F1",
                    "PA-F1 (optimistic)",
                    "top-3 hit",
                    "ROC-AUC",
                    "fit s",
                ],
                rows,
            ),
            f"PA-F1 note: {tsm.PA_NOTE}.",
        ]
    )


# ----------------------------------------------------------------------------------------------- UCR
def ucr_suite() -> str:
    rows = []
    for path in sorted((TS / "ucr").glob("*_UCR_Anomaly_*.txt")):
        parts = path.stem.split("_")
        train_end, a, b = int(parts[-3]), int(parts[-2]), int(parts[-1])
        x = np.loadtxt(path, dtype=np.float32).reshape(-1, 1)
        det = an.CNNForecaster(window=64, filters=16, hidden=32, epochs=40, smoothing=5, random_state=0).fit(
            x[:train_end]
        )
        s = det.anomaly_score(x)
        s[:train_end] = -np.inf
        top = int(np.argmax(s))
        hit = a - 100 <= top <= b + 100
        rows.append([path.name.split("_")[3], train_end, f"{a}-{b}", top, "yes" if hit else "no"])
    share = float(np.mean([r[-1] == "yes" for r in rows]))
    return "\n\n".join(
        [
            f"**UCR** (top-scored step within ±100 of the anomaly): {share:.0%} of {len(rows)} series",
            markdown_table(["series", "train end", "anomaly", "top step", "hit"], rows),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", nargs="+", default=["nab", "smd", "ucr"], choices=["nab", "smd", "ucr"])
    ap.add_argument("--nab-detectors", nargs="+", default=list(NAB_DETECTORS), choices=list(NAB_DETECTORS))
    args = ap.parse_args(argv)
    if not TS.exists():
        raise SystemExit(f"{TS} is absent: the time-series benchmark data lives in ../shared/data")
    parts = [f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}."]
    print(parts[0], flush=True)
    for suite in args.suite:
        t0 = time.perf_counter()
        text = nab_suite(args.nab_detectors) if suite == "nab" else smd_suite() if suite == "smd" else ucr_suite()
        parts.append(text + f"\n\n({suite}: {time.perf_counter() - t0:.0f} s)")
        print(parts[-1], flush=True)
    print()


if __name__ == "__main__":
    main()
