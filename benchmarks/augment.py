"""Scarce normal data: does training on VAE samples help when only 50 / 100 / 200 normal rows exist?

    .venv/bin/python benchmarks/augment.py            # runs (resumable) into benchmarks/results/augment.jsonl
    .venv/bin/python benchmarks/augment.py --report   # also appends the table to benchmarks/RESULTS.md

Protocol: the novelty split of benchmarks/tabular.py (seeded shuffle of the normal rows; 60 % may train,
the other 40 % and every anomaly are the test set), then only ``n`` of the training rows are kept (the first
``n`` of the shuffle). The default autoencoder is fitted on them as they are ("none"), and through
``anomalia.workflows.augment.fit_augmented`` with 1x and 4x as many VAE samples as real training rows.
ROC-AUC on the test set; several seeds. Torch runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anomalia as an
from _common import DATA, machine, markdown_table
from anomalia.workflows.augment import fit_augmented

OUT = Path(__file__).resolve().parent / "results" / "augment.jsonl"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
#: Small and mid-sized ADBench sets of several kinds (medical, physical, image features), chosen before any run.
DATASETS = ("4_breastw", "29_Pima", "7_Cardiotocography", "2_annthyroid", "30_satellite")
SIZES = (50, 100, 200)
SEEDS = (0, 1, 2)
CONFIGS = {"none": 0.0, "vae x1": 1.0, "vae x4": 4.0}


def split(X: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    normal = rng.permutation(np.flatnonzero(y == 0))
    n_train = int(0.6 * normal.size)
    test = np.r_[normal[n_train:], np.flatnonzero(y == 1)]
    return X[normal[: min(n, n_train)]], X[test], y[test]


def run_one(name: str, n: int, seed: int, config: str) -> dict:
    d = np.load(DATA / "tabular" / "adbench" / f"{name}.npz")
    X, y = d["X"].astype(np.float32), d["y"].astype(int)
    train, test, y_test = split(X, y, n, seed)
    start = time.perf_counter()
    det = an.AutoEncoder(random_state=seed)
    factor = CONFIGS[config]
    if factor:
        fit_augmented(det, train, factor=factor, random_state=seed)
    else:
        det.fit(train)
    scores = det.anomaly_score(test)
    return {
        "dataset": name,
        "n": n,
        "seed": seed,
        "config": config,
        "roc_auc": float(roc_auc_score(y_test, scores)),
        "seconds": time.perf_counter() - start,
    }


def run() -> list[dict]:
    done = {}
    if OUT.exists():
        for line in OUT.read_text().splitlines():
            r = json.loads(line)
            done[(r["dataset"], r["n"], r["seed"], r["config"])] = r
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("a") as fh:
        for name in DATASETS:
            for n in SIZES:
                for seed in SEEDS:
                    for config in CONFIGS:
                        key = (name, n, seed, config)
                        if key not in done:
                            done[key] = run_one(*key)
                            fh.write(json.dumps(done[key]) + "\n")
                            fh.flush()
                            print(done[key], flush=True)
    return list(done.values())


def table(rows: list[dict]) -> str:
    by: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for r in rows:
        by[(r["dataset"], r["n"], r["config"])].append(r["roc_auc"])
    body = []
    for name in DATASETS:
        for n in SIZES:
            vals = {c: by.get((name, n, c), []) for c in CONFIGS}
            if not vals["none"]:
                continue
            base = float(np.mean(vals["none"]))
            cells = [name, n, f"{base:.3f} ± {np.std(vals['none']):.3f}"]
            for c in list(CONFIGS)[1:]:
                m = float(np.mean(vals[c])) if vals[c] else float("nan")
                cells.append(f"{m:.3f} ({m - base:+.3f})")
            body.append(cells)
    summary = []
    for n in SIZES:
        for c in list(CONFIGS)[1:]:
            diffs = [
                np.mean(by[(name, n, c)]) - np.mean(by[(name, n, "none")])
                for name in DATASETS
                if by.get((name, n, c)) and by.get((name, n, "none"))
            ]
            if diffs:
                wins = sum(d > 0.005 for d in diffs)
                losses = sum(d < -0.005 for d in diffs)
                summary.append([n, c, f"{np.mean(diffs):+.3f}", f"{wins} / {len(diffs) - wins - losses} / {losses}"])
    header = ["dataset", "normal rows", "none (mean ± sd over seeds)", *[f"{c} (Δ)" for c in list(CONFIGS)[1:]]]
    return (
        markdown_table(header, body)
        + "\n\n"
        + markdown_table(["normal rows", "augmentation", "mean Δ ROC-AUC", "better / same / worse (±0.005)"], summary)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = run()
    print(table(rows))
    if args.report:
        with RESULTS.open("a") as fh:
            fh.write(
                "\n## Scarce normal data: VAE augmentation\n\n"
                "`.venv/bin/python benchmarks/augment.py --report` — ADBench, the novelty split of "
                "benchmarks/tabular.py, then only 50 / 100 / 200 normal training rows kept; the default "
                "autoencoder fitted on them alone (none) or with 1x / 4x as many rows drawn from a VAE fitted on "
                f"them (`anomalia.workflows.augment.fit_augmented`; calibration on real rows only); ROC-AUC "
                f"on the test set, mean over seeds {', '.join(map(str, SEEDS))}. Machine: {machine()}, shared "
                "with other jobs.\n\n" + table(rows) + "\n"
            )


if __name__ == "__main__":
    main()
