"""Autoencoder candidates that follow the data's shape: transforms of skewed inputs, and a code as wide as
the data's intrinsic dimension. Compared on development datasets only (the ADBench datasets
`benchmarks/tabular_recipes.py` calls `DEV`), then checked on held-out ones.

    nice -n 19 .venv/bin/python benchmarks/tabular_ae_shape.py --datasets dev --seeds 0 --out shape.jsonl
    .venv/bin/python benchmarks/tabular_ae_shape.py --summary shape.jsonl

Input transforms (each fitted on the training rows, applied to every row before the default
`AutoEncoder`, which then standardises as always):

- `none`: the default autoencoder as it is;
- `yeo-johnson`: scikit-learn's `PowerTransformer` on every feature (maximum-likelihood lambda per feature);
- `yj-skewed`: the same, only on features whose training skewness exceeds 1 in absolute value;
- `log-skewed`: `sign(x - m) * log1p(|x - m| / s)` on those features (m the training median, s the
  median absolute deviation, or the standard deviation where that is 0).

Code width (inputs as they are): `code-pcaQ`, the encoder (64, k) with k the number of principal components
of the standardised training rows that explain a share Q of their variance (at least 2, at most 32; the
default code is 32).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import skew
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import PowerTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anomalia as an
from tabular import ADBENCH, CONTAMINATION, split
from tabular_recipes import names

CANDIDATES = ("none", "yeo-johnson", "yj-skewed", "log-skewed", "code-pca90", "code-pca95", "code-pca99")


def _skewed(X: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        s = np.nan_to_num(skew(X.astype(np.float64), axis=0), nan=0.0)
    return np.abs(s) > 1.0


def pca_code(X: np.ndarray, share: float) -> int:
    """Principal components of the standardised rows that explain ``share`` of their variance (2-32)."""
    Z = (X - X.mean(0)) / np.where(X.std(0) > 1e-12, X.std(0), 1.0)
    var = np.linalg.svd(Z.astype(np.float64), compute_uv=False) ** 2
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), share) + 1)
    return max(2, min(32, k))


def transform(kind: str, X_tr: np.ndarray, X_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if kind == "none" or kind.startswith("code-"):
        return X_tr, X_te
    cols = np.ones(X_tr.shape[1], bool) if kind == "yeo-johnson" else _skewed(X_tr)
    if not cols.any():
        return X_tr, X_te
    A, B = X_tr.astype(np.float64).copy(), X_te.astype(np.float64).copy()
    if kind in ("yeo-johnson", "yj-skewed"):
        pt = PowerTransformer(method="yeo-johnson", standardize=True).fit(A[:, cols])
        A[:, cols], B[:, cols] = pt.transform(A[:, cols]), pt.transform(B[:, cols])
    else:
        m = np.median(A[:, cols], axis=0)
        s = np.median(np.abs(A[:, cols] - m), axis=0)
        s = np.where(s > 1e-12, s, np.maximum(A[:, cols].std(axis=0), 1e-12))
        f = lambda Z: np.sign(Z - m) * np.log1p(np.abs(Z - m) / s)  # noqa: E731
        A[:, cols], B[:, cols] = f(A[:, cols]), f(B[:, cols])
    return A.astype(np.float32), np.nan_to_num(B, posinf=1e6, neginf=-1e6).astype(np.float32)


def run(args: argparse.Namespace) -> None:
    done = set()
    if Path(args.out).exists():
        for line in Path(args.out).read_text().splitlines():
            r = json.loads(line)
            done.add((r["dataset"], r["protocol"], r["seed"], r["candidate"]))
    for name in names(args.datasets):
        z = np.load(ADBENCH / f"{name}.npz")
        X, y = z["X"].astype(np.float32), z["y"].astype(int)
        for protocol in args.protocols:
            for seed in args.seeds:
                X_tr, X_te, y_te = split(X, y, protocol, seed)
                extra = {"contamination": CONTAMINATION} if protocol == "unsupervised" else {}
                n_skewed = int(_skewed(X_tr).sum())
                for kind in args.candidates:
                    if (name, protocol, seed, kind) in done:
                        continue
                    A, B = transform(kind, X_tr, X_te)
                    params = dict(extra)
                    if kind.startswith("code-pca"):
                        params["hidden"] = (64, pca_code(X_tr, int(kind.removeprefix("code-pca")) / 100))
                    det = an.AutoEncoder(random_state=seed, **params).fit(A)
                    auc = float(roc_auc_score(y_te, det.anomaly_score(B)))
                    row = {
                        "dataset": name,
                        "protocol": protocol,
                        "seed": seed,
                        "candidate": kind,
                        "roc_auc": auc,
                        "n_skewed": n_skewed,
                        "n_features": int(X.shape[1]),
                        "hidden": list(det.hidden_),
                    }
                    with open(args.out, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)


def summary(path: str) -> None:
    """Markdown: mean ROC-AUC per candidate and protocol over the (dataset, seed) pairs every candidate ran
    on, then one row per dataset."""
    from _common import markdown_table

    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    auc = {(r["dataset"], r["protocol"], r["seed"], r["candidate"]): r["roc_auc"] for r in rows}
    pairs = {
        p: sorted({(d, s) for d, pr, s, _ in auc if pr == p and all((d, p, s, c) in auc for c in CANDIDATES)})
        for p in ("novelty", "unsupervised")
    }
    means = [[c, *(f"{np.mean([auc[d, p, s, c] for d, s in pairs[p]]):.3f}" for p in pairs)] for c in CANDIDATES]
    print(markdown_table(["candidate", *(f"{p} ({len(v)})" for p, v in pairs.items())], means))
    print()
    per = [[f"{d} {p}", *(f"{auc[d, p, s, c]:.3f}" for c in CANDIDATES)] for p, v in pairs.items() for d, s in v]
    print(markdown_table(["dataset, protocol", *CANDIDATES], per))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="dev")
    ap.add_argument("--protocols", nargs="+", default=["novelty", "unsupervised"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--out", default="skew.jsonl")
    ap.add_argument("--summary")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
    else:
        import torch

        torch.set_num_threads(1)
        run(args)


if __name__ == "__main__":
    main()
