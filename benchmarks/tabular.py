"""Tabular benchmark: accuracy on ADBench under two protocols, calibration, and speed.

    .venv/bin/python benchmarks/tabular.py accuracy   # ROC-AUC / PR-AUC / FAR per dataset, seed and protocol
    .venv/bin/python benchmarks/tabular.py speed      # scoring, training-epoch and fit+score ratios
    .venv/bin/python benchmarks/tabular.py report     # writes the tables into benchmarks/RESULTS.md
    .venv/bin/python benchmarks/tabular.py accuracy --out rerun.jsonl --seeds 0 --protocols novelty
    .venv/bin/python benchmarks/tabular.py compare --out rerun.jsonl   # a rerun against the committed runs
    .venv/bin/python benchmarks/tabular.py means --out rerun.jsonl     # mean ROC-AUC beside committed peers

Protocols (../shared/data/README.md): novelty — train on 60 % of the normal rows (seeded shuffle), test on
the other 40 % plus all anomalies; unsupervised — stratified 70/30 split, fit on the contaminated 70 %.
anomalia's detectors run with their defaults; in the unsupervised protocol they are told the data may be
contaminated (``contamination=0.1`` for every dataset, no per-dataset value). Peers run with their defaults.
Accuracy runs use one torch thread per process for every detector (run protocols in parallel processes);
speed runs use all cores. Results go to benchmarks/results/tabular.jsonl (one line per run, so a run can be
resumed; delete it to start over).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anomalia as an
from _common import DATA, machine, markdown_table
from anomalia.detectors.deep import SCORE_BATCH

ADBENCH = DATA / "tabular" / "adbench"
OUT = Path(__file__).resolve().parent / "results" / "tabular.jsonl"
SMALL_ROWS = 10_000  # peers (PyOD) run on datasets up to this size: their batch size of 32 makes larger ones slow
CONTAMINATION = 0.1
ALPHA = 0.05


def datasets(which: str) -> list[Path]:
    paths = sorted(ADBENCH.glob("*.npz"), key=lambda p: np.load(p)["X"].shape[0])
    if which == "small":
        return [p for p in paths if np.load(p)["X"].shape[0] <= SMALL_ROWS]
    if which == "all":
        return paths
    names = set(which.split(","))
    return [p for p in paths if p.stem in names or p.stem.split("_", 1)[1] in names]


def split(X: np.ndarray, y: np.ndarray, protocol: str, seed: int):
    if protocol == "novelty":
        rng = np.random.default_rng(seed)
        normal = rng.permutation(np.flatnonzero(y == 0))
        n_train = int(0.6 * normal.size)
        test = np.r_[normal[n_train:], np.flatnonzero(y == 1)]
        return X[normal[:n_train]], X[test], y[test]
    X_tr, X_te, _, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    return X_tr, X_te, y_te


class Anomalia:
    def __init__(self, name: str, protocol: str, seed: int) -> None:
        extra = {"contamination": CONTAMINATION} if protocol == "unsupervised" else {}
        self.det = an.make_detector(name, random_state=seed, threshold=f"false-alarm:{ALPHA}", **extra)

    def fit(self, X: np.ndarray) -> None:
        self.det.fit(X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.det.anomaly_score(X)

    def false_alarm_rate(self, X_normal: np.ndarray) -> float:
        return float((self.det.p_value(X_normal) <= ALPHA).mean())


class Peer:
    def __init__(self, make: Callable[[int], object]) -> None:
        self.make = make

    def bind(self, d: int, seed: int) -> Peer:
        self.model = self.make(d, seed)
        return self

    def fit(self, X: np.ndarray) -> None:
        self.model.fit(X)

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.model.decision_function(X)


def peers() -> dict[str, Callable[[int, int], Peer]]:
    from sklearn.ensemble import IsolationForest

    out: dict[str, Callable[[int, int], Peer]] = {
        "sklearn IForest": lambda d, s: Peer(lambda d, s: _SkIF(IsolationForest(random_state=s))).bind(d, s),
    }
    try:
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.deep_svdd import DeepSVDD
        from pyod.models.vae import VAE
    except ImportError:
        print("PyOD is not installed (pip install '.[bench]'): peers limited to IsolationForest", file=sys.stderr)
        return out
    out["PyOD AE"] = lambda d, s: Peer(lambda d, s: AutoEncoder(random_state=s, verbose=0)).bind(d, s)
    out["PyOD VAE"] = lambda d, s: Peer(lambda d, s: VAE(random_state=s, verbose=0)).bind(d, s)
    out["PyOD DeepSVDD"] = lambda d, s: Peer(lambda d, s: DeepSVDD(n_features=d, random_state=s, verbose=0)).bind(d, s)
    from pyod.models.knn import KNN

    out["PyOD KNN"] = lambda d, s: Peer(lambda d, s: KNN()).bind(d, s)
    return out


class _SkIF:
    def __init__(self, model: object) -> None:
        self.model = model

    def fit(self, X: np.ndarray) -> None:
        self.model.fit(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return -self.model.score_samples(X)


OURS = {"anomalia AE": "autoencoder", "anomalia VAE": "vae", "anomalia kNN": "knn", "anomalia Ensemble": "ensemble"}


def load_done(out: Path) -> set[tuple[str, int, str, str]]:
    if not out.exists():
        return set()
    return {(r["dataset"], r["seed"], r["protocol"], r["detector"]) for r in map(json.loads, out.open())}


def run_accuracy(args: argparse.Namespace) -> None:
    out = Path(args.out) if args.out else OUT
    out.parent.mkdir(exist_ok=True, parents=True)
    done = load_done(out)
    peer_makers = peers()
    for path in datasets(args.datasets):
        z = np.load(path)
        X, y = z["X"].astype(np.float32), z["y"].astype(int)
        for seed in args.seeds:
            for protocol in args.protocols:
                X_tr, X_te, y_te = split(X, y, protocol, seed)
                names = list(OURS)
                names += list(peer_makers) if X.shape[0] <= SMALL_ROWS or args.peers_on_large else ["sklearn IForest"]
                for name in names:
                    if args.detectors and name not in args.detectors:
                        continue
                    if (path.stem, seed, protocol, name) in done:
                        continue
                    model = (
                        Anomalia(OURS[name], protocol, seed) if name in OURS else peer_makers[name](X.shape[1], seed)
                    )
                    t0 = time.perf_counter()
                    model.fit(X_tr)
                    t1 = time.perf_counter()
                    s = np.asarray(model.score(X_te), dtype=np.float64)
                    t2 = time.perf_counter()
                    row = {
                        "dataset": path.stem,
                        "n": int(X.shape[0]),
                        "seed": seed,
                        "protocol": protocol,
                        "detector": name,
                        "roc_auc": float(roc_auc_score(y_te, s)),
                        "pr_auc": float(average_precision_score(y_te, s)),
                        "fit_s": t1 - t0,
                        "score_rows_per_s": X_te.shape[0] / max(t2 - t1, 1e-9),
                    }
                    normal_test = X_te[y_te == 0]
                    if isinstance(model, Anomalia) and protocol == "novelty":
                        row["far"] = model.false_alarm_rate(normal_test)
                        row["n_normal_test"] = int(normal_test.shape[0])
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(
                        f"{path.stem:22s} s{seed} {protocol:12s} {name:15s} roc {row['roc_auc']:.3f} "
                        f"pr {row['pr_auc']:.3f} fit {row['fit_s']:.1f}s",
                        flush=True,
                    )


# ---------------------------------------------------------------------------------------------- speed
def run_speed(args: argparse.Namespace) -> dict[str, float]:
    import torch

    rng = np.random.default_rng(0)
    d = 100
    W = rng.normal(size=(10, d)).astype(np.float32)
    X_fit = (rng.normal(size=(20_000, 10)) @ W + 0.1 * rng.normal(size=(20_000, d))).astype(np.float32)
    X_big = (rng.normal(size=(1_000_000, 10)) @ W + 0.1 * rng.normal(size=(1_000_000, d))).astype(np.float32)
    det = an.AutoEncoder(hidden=(64, 32), epochs=2, random_state=0).fit(X_fit)
    net = det.net_
    out: dict[str, float] = {}

    # 1. scoring: anomaly_score vs a bare forward pass of the same network in chunks of the same size
    chunk = SCORE_BATCH

    def bare_forward() -> None:
        Xt = torch.from_numpy(X_big)
        with torch.inference_mode():
            for i in range(0, Xt.shape[0], chunk):
                net(Xt[i : i + chunk])

    def ours() -> None:
        det.anomaly_score(X_big)

    bare_t, ours_t = _paired(bare_forward, ours)
    out["score_rows_per_s"] = X_big.shape[0] / ours_t
    out["bare_forward_rows_per_s"] = X_big.shape[0] / bare_t
    out["score_ratio"] = bare_t / ours_t
    out["score_chunk_rows"] = chunk

    # 1b. the whole scoring step of a model folder (scores, p-values, decisions, top-3 contributions in the
    # same forward pass) on the same rows, against the same bare forward
    from anomalia.model import Model

    model = Model(det, name="speed")
    for explain in ("flagged", "all"):
        bare_t, model_t = _paired(bare_forward, lambda e=explain: model.score(X_big, explain=e))
        out[f"model_score_{explain}_rows_per_s"] = X_big.shape[0] / model_t
        out[f"model_score_{explain}_ratio"] = bare_t / model_t

    # 2. one training epoch: the anomalia loop vs a bare torch loop, same network, batch size and optimiser
    from anomalia.nn import DenseAutoEncoder, TrainConfig, train

    X_ep = torch.from_numpy(X_big[:200_000])

    def bare_epoch() -> None:
        m = DenseAutoEncoder(d, (64, 32))
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-5)
        perm = torch.randperm(X_ep.shape[0])
        for i in range(0, X_ep.shape[0], 256):
            xb = X_ep[perm[i : i + 256]]
            loss = ((m(xb) - xb) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def our_epoch() -> None:
        m = DenseAutoEncoder(d, (64, 32))
        train(
            m,
            lambda net, xb: (net(xb) - xb).pow(2).mean(dim=1),
            X_ep,
            None,
            TrainConfig(epochs=1),
            generator=torch.Generator().manual_seed(0),
        )

    bare_e, ours_e = _paired(bare_epoch, our_epoch)
    out["epoch_s_bare"] = bare_e
    out["epoch_s_ours"] = ours_e
    out["epoch_ratio"] = ours_e / bare_e

    # 3. fit + score against PyOD's AutoEncoder at the same number of epochs (each with its default batch size)
    try:
        from pyod.models.auto_encoder import AutoEncoder as PyodAE
    except ImportError:
        print("PyOD missing: skipping the fit+score comparison", file=sys.stderr)
        return out
    X_tr, X_te = X_big[:20_000], X_big[20_000:120_000]
    epochs = 10

    def ours_fit_score() -> None:
        an.AutoEncoder(hidden=(64, 32), epochs=epochs, patience=epochs, random_state=0).fit(X_tr).anomaly_score(X_te)

    def pyod_fit_score() -> None:
        PyodAE(epoch_num=epochs, hidden_neuron_list=[64, 32], verbose=0, random_state=0).fit(X_tr).decision_function(
            X_te
        )

    out["fit_score_s_pyod"], out["fit_score_s_ours"] = _paired(pyod_fit_score, ours_fit_score)
    out["fit_score_speedup"] = out["fit_score_s_pyod"] / out["fit_score_s_ours"]
    return out


def _paired(baseline: Callable[[], None], ours: Callable[[], None], repeats: int = 3) -> tuple[float, float]:
    """Median seconds of each, measured alternately so that both see the same machine load."""
    b, o = [], []
    for _ in range(repeats):
        b.append(_timed(baseline))
        o.append(_timed(ours))
    return float(np.median(b)), float(np.median(o))


def _timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ---------------------------------------------------------------------------------------------- report
def _seed_text(per: dict, dets: list[str], names: list[str]) -> str:
    counts = [len({r["seed"] for d in dets for r in per[(n, d)]}) for n in names]
    return ", ".join(f"{counts.count(k)} with {k} seed(s)" for k in sorted(set(counts), reverse=True))


def summarise(speed: dict[str, float] | None) -> str:
    rows = [json.loads(line) for line in OUT.open()]
    detectors = ["anomalia AE", "anomalia VAE", "sklearn IForest", "PyOD AE", "PyOD VAE", "PyOD DeepSVDD"]
    parts = []
    for scope, keep in (
        ("datasets with ≤ 10,000 rows (all detectors)", lambda r: r["n"] <= SMALL_ROWS),
        ("every dataset run (anomalia and IsolationForest)", lambda r: True),
    ):
        sel = [r for r in rows if keep(r)]
        dets = [d for d in detectors if any(r["detector"] == d for r in sel)]
        if scope.startswith("every"):
            dets = [d for d in dets if d in ("anomalia AE", "anomalia VAE", "sklearn IForest")]
        names = sorted({r["dataset"] for r in sel})
        for protocol in ("novelty", "unsupervised"):
            per: dict[tuple[str, str], list[dict]] = defaultdict(list)
            for r in sel:
                if r["protocol"] == protocol:
                    per[(r["dataset"], r["detector"])].append(r)
            complete = [n for n in names if all(per.get((n, d)) for d in dets)]
            if not complete:
                continue
            wins = defaultdict(int)
            for n in complete:
                best = max(dets, key=lambda d: np.mean([r["roc_auc"] for r in per[(n, d)]]))
                wins[best] += 1
            table = []
            for d in dets:
                rs = [r for n in complete for r in per[(n, d)]]
                table.append(
                    [
                        d,
                        np.mean([np.mean([r["roc_auc"] for r in per[(n, d)]]) for n in complete]),
                        np.mean([np.mean([r["pr_auc"] for r in per[(n, d)]]) for n in complete]),
                        wins[d],
                        np.mean([r["fit_s"] for r in rs]),
                        float(np.median([r["score_rows_per_s"] for r in rs])),
                    ]
                )
            parts.append(
                f"#### {protocol}, {scope}: {len(complete)} datasets ({_seed_text(per, dets, complete)})\n\n"
                + markdown_table(
                    [
                        "detector",
                        "mean ROC-AUC",
                        "mean PR-AUC",
                        "wins (ROC-AUC)",
                        "mean fit s",
                        "median scoring rows/s",
                    ],
                    table,
                )
            )
    # per-dataset ROC-AUC, novelty and unsupervised
    for protocol in ("novelty", "unsupervised"):
        names = sorted({r["dataset"] for r in rows}, key=lambda n: next(r["n"] for r in rows if r["dataset"] == n))
        dets = [d for d in detectors if any(r["detector"] == d for r in rows)]
        table = []
        for n in names:
            cells: list[object] = [n]
            for d in dets:
                v = [
                    r["roc_auc"] for r in rows if r["dataset"] == n and r["detector"] == d and r["protocol"] == protocol
                ]
                cells.append(float(np.mean(v)) if v else "–")
            table.append(cells)
        parts.append(
            f"#### ROC-AUC per dataset, {protocol} (mean over seeds)\n\n" + markdown_table(["dataset", *dets], table)
        )
    # calibration
    cal = defaultdict(list)
    for r in rows:
        if "far" in r and r["n_normal_test"] >= 500:
            cal[(r["dataset"], r["detector"])].append(r["far"])
    if cal:
        table = [
            [n, d, float(np.mean(v)), "yes" if abs(np.mean(v) - ALPHA) <= 0.02 else "NO"]
            for (n, d), v in sorted(cal.items())
        ]
        within = sum(t[3] == "yes" for t in table)
        parts.append(
            f"#### Calibration: observed false-alarm rate at alpha = {ALPHA} on held-out normal rows "
            f"(novelty protocol, datasets with ≥ 500 normal test rows): {within}/{len(table)} within "
            f"{ALPHA} ± 0.02\n\n" + markdown_table(["dataset", "detector", "observed FAR", "within ± 0.02"], table)
        )
    if speed:
        parts.append(
            "#### Speed (ratios measured in the same process)\n\n"
            + markdown_table(
                ["measure", "value", "bar"],
                [
                    ["anomaly_score rows/s, 100 features, AE (64, 32), 1M rows", speed["score_rows_per_s"], ""],
                    [
                        "bare torch.inference_mode forward rows/s, same net, "
                        + (f"chunks of {speed['score_chunk_rows']:,} rows" if "score_chunk_rows" in speed else "rows"),
                        speed["bare_forward_rows_per_s"],
                        "",
                    ],
                    ["scoring ratio (ours / bare)", speed["score_ratio"], "≥ 0.40"],
                    *(
                        row
                        for e in ("flagged", "all")
                        if f"model_score_{e}_ratio" in speed
                        for row in (
                            [
                                f"Model.score rows/s, explain={e} (p-values, flags, top 3 too)",
                                speed[f"model_score_{e}_rows_per_s"],
                                "",
                            ],
                            [f"Model.score ratio, explain={e} (ours / bare)", speed[f"model_score_{e}_ratio"], ""],
                        )
                    ),
                    ["one epoch, anomalia loop (s), 200k rows, batch 256", speed["epoch_s_ours"], ""],
                    ["one epoch, bare torch loop (s)", speed["epoch_s_bare"], ""],
                    ["epoch cost ratio (ours / bare)", speed["epoch_ratio"], "≤ 2"],
                    *(
                        [
                            [
                                "fit + score s, anomalia AE (10 epochs, 20k fit, 100k score)",
                                speed["fit_score_s_ours"],
                                "",
                            ],
                            ["fit + score s, PyOD AutoEncoder (10 epochs)", speed["fit_score_s_pyod"], ""],
                            ["speed-up over PyOD", speed["fit_score_speedup"], "≥ 20"],
                        ]
                        if "fit_score_speedup" in speed
                        else []
                    ),
                ],
            )
        )
    return "\n\n".join(parts)


def compare(rerun: Path) -> str:
    """A rerun's ROC-AUC and PR-AUC beside the committed runs of the same dataset, seed, protocol and detector."""
    key = ("dataset", "seed", "protocol", "detector")
    committed = {tuple(r[k] for k in key): r for r in map(json.loads, OUT.open())}
    table, diffs = [], []
    for r in map(json.loads, rerun.open()):
        old = committed.get(tuple(r[k] for k in key))
        if old is None:
            continue
        d = abs(r["roc_auc"] - old["roc_auc"])
        diffs.append(d)
        far = [old.get("far", "–"), r.get("far", "–")]
        table.append([r["dataset"], r["detector"], r["seed"], old["roc_auc"], r["roc_auc"], d, *far])
    head = (
        f"{len(table)} runs; largest |ROC-AUC difference| {max(diffs):.2e}, mean {np.mean(diffs):.2e}\n\n"
        if diffs
        else "no run of the rerun is in the committed results\n\n"
    )
    cols = ["dataset", "detector", "seed", "ROC-AUC committed", "ROC-AUC rerun", "|diff|", "FAR committed", "FAR rerun"]
    return head + markdown_table(cols, table)


def means(rerun: Path) -> str:
    """Mean ROC-AUC per protocol and detector over the (dataset, seed) pairs of a rerun: the rerun's detectors
    beside the committed runs of every other detector on exactly those pairs."""
    key = ("dataset", "seed", "protocol", "detector")
    new = {tuple(r[k] for k in key): r for r in map(json.loads, rerun.open())}
    committed = {tuple(r[k] for k in key): r for r in map(json.loads, OUT.open())} if OUT.exists() else {}
    parts = []
    for protocol in sorted({k[2] for k in new}):
        pairs = sorted({(k[0], k[1]) for k in new if k[2] == protocol})
        dets = sorted({k[3] for k in new if k[2] == protocol} | {k[3] for k in committed if k[2] == protocol})
        rows = []
        for det in dets:
            got = [new.get((d, s, protocol, det)) or committed.get((d, s, protocol, det)) for d, s in pairs]
            if any(g is None for g in got):
                continue
            source = "rerun" if all((d, s, protocol, det) in new for d, s in pairs) else "committed"
            roc, pr = (float(np.mean([g[m] for g in got])) for m in ("roc_auc", "pr_auc"))
            rows.append([det, roc, pr, source])
        rows.sort(key=lambda r: -r[1])
        table = markdown_table(["detector", "mean ROC-AUC", "mean PR-AUC", "from"], rows)
        parts.append(f"#### {protocol}: {len(pairs)} (dataset, seed) pairs\n\n{table}")
    return "\n\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["accuracy", "speed", "report", "compare", "means"])
    ap.add_argument("--out", default=None, help="accuracy: the jsonl to write (default: the committed results)")
    ap.add_argument("--datasets", default="small", help="small (≤ 10,000 rows), all, or comma-separated names")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--protocols", nargs="+", default=["novelty", "unsupervised"])
    ap.add_argument("--detectors", nargs="*", default=None)
    ap.add_argument("--peers-on-large", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for accuracy runs (every detector alike)")
    args = ap.parse_args()
    if not ADBENCH.exists():
        sys.exit(f"{ADBENCH} is absent: the ADBench data lives in ../shared/data (see its README)")
    speed_file = OUT.parent / "tabular_speed.json"
    if args.what == "accuracy":
        import torch

        torch.set_num_threads(args.threads)
        run_accuracy(args)
    elif args.what == "speed":
        OUT.parent.mkdir(exist_ok=True)
        res = run_speed(args)
        speed_file.write_text(json.dumps({"machine": machine(), **res}, indent=1))
        print(json.dumps(res, indent=1))
    elif args.what == "compare":
        print(compare(Path(args.out)))
    elif args.what == "means":
        print(means(Path(args.out)))
    else:
        speed = json.loads(speed_file.read_text()) if speed_file.exists() else None
        print(summarise(speed))


if __name__ == "__main__":
    main()
