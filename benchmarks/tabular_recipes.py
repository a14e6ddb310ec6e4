"""Tabular default recipes: candidates for the autoencoder, kNN and ensemble, compared on
development datasets only, then checked on held-out ones.

    nice -n 19 .venv/bin/python benchmarks/tabular_recipes.py fit --datasets dev --seeds 0 1 2
    nice -n 19 .venv/bin/python benchmarks/tabular_recipes.py fit --datasets heldout --seeds 0 1 2
    .venv/bin/python benchmarks/tabular_recipes.py table --datasets dev       # candidates, mean ROC-AUC
    .venv/bin/python benchmarks/tabular_recipes.py table --datasets heldout
    .venv/bin/python benchmarks/tabular_recipes.py summary --seeds 0    # both, one line per candidate

``fit`` trains every candidate member once per (dataset, protocol, seed) on ``benchmarks/tabular.py``'s
splits and keeps the raw material of each score in ``benchmarks/results/recipes/`` (scratch, not
committed): per-feature reconstruction errors of the autoencoders on training, calibration and test
rows, the scores of the other members. ``table`` then builds every candidate from them (bagging members,
per-feature normalisation, fusion) without refitting, so all candidates see the same fitted networks.

Development datasets: the nine ADBench datasets of at most 10,000 rows already used to choose the earlier
defaults (RESULTS.md, "Accuracy work"); held-out: every other ADBench dataset of at most 10,000 rows,
including the breast-cancer family (`43_WDBC` is the demo's table).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anomalia as an
from _common import markdown_table
from tabular import ADBENCH, CONTAMINATION, split

SCRATCH = Path(__file__).resolve().parent / "results" / "recipes"
DEV = (
    "15_Hepatitis",
    "21_Lymphography",
    "37_Stamps",
    "47_yeast",
    "17_InternetAds",
    "25_musk",
    "35_SpamBase",
    "19_landsat",
    "2_annthyroid",
)
HELDOUT = (
    "45_wine",
    "46_WPBC",
    "42_WBC",
    "39_vertebral",
    "43_WDBC",
    "4_breastw",
    "29_Pima",
    "12_fault",
    "7_Cardiotocography",
    "41_Waveform",
    "27_PageBlocks",
    "30_satellite",
    "24_mnist",
)
AE_MEMBERS = 5  # autoencoders of the default recipe per case (bagging candidates use the first k)


def names(which: str) -> tuple[str, ...]:
    return {"dev": DEV, "heldout": HELDOUT}.get(which) or tuple(which.split(","))


def _ae_parts(det: an.BaseDetector, rows: np.ndarray) -> np.ndarray:
    return np.asarray(det._feature_scores(det._validate(rows, fitting=False)[0]), dtype=np.float32)


def fit_case(name: str, protocol: str, seed: int) -> None:
    out = SCRATCH / f"{name}__{protocol}__{seed}.npz"
    if out.exists():
        return
    z = np.load(ADBENCH / f"{name}.npz")
    X, y = z["X"].astype(np.float32), z["y"].astype(int)
    X_tr, X_te, y_te = split(X, y, protocol, seed)
    extra = {"contamination": CONTAMINATION} if protocol == "unsupervised" else {}
    d = X.shape[1]
    res: dict[str, np.ndarray] = {"y": y_te}

    def keep_ae(tag: str, det: an.BaseDetector) -> None:
        for part, rows in (("tr", det.replay_), ("cal", det.calibration_rows_), ("te", X_te)):
            res[f"{tag}.{part}"] = _ae_parts(det, rows)

    def keep_scores(tag: str, det: an.BaseDetector) -> None:
        res[f"{tag}.cal"] = det.calibrator_.scores
        res[f"{tag}.te"] = det.anomaly_score(X_te)

    # the base detector splits off the calibration rows with random_state; member i uses random_state
    # 1000 * seed + i, so every member of a case sees its own split (as an ensemble member would)
    for i in range(AE_MEMBERS):
        keep_ae(f"ae{i}", an.AutoEncoder(random_state=1000 * seed + i, **extra).fit(X_tr))
    narrow = (max(4, min(64, d // 2)), max(2, min(32, d // 4)))
    variants = {
        "drop": {"dropout": 0.2},
        "narrow": {"hidden": narrow},
        "wd": {"weight_decay": 1e-2},
    }
    for tag, params in variants.items():
        keep_ae(tag, an.AutoEncoder(random_state=1000 * seed, **params, **extra).fit(X_tr))
    keep_ae("denoise", Denoising(random_state=1000 * seed, **extra).fit(X_tr))
    keep_ae("robustscale", RobustScaled(random_state=1000 * seed, **extra).fit(X_tr))
    keep_scores("vae", an.VAE(random_state=1000 * seed, **extra).fit(X_tr))
    keep_scores("if", an.IsolationForest(random_state=1000 * seed, **extra).fit(X_tr))
    for scaling in ("standard", "robust", "none", "minmax"):
        keep_scores(f"knn_{scaling}", ScaledKNN(scaling=scaling, random_state=1000 * seed, **extra).fit(X_tr))
    SCRATCH.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **res)
    print(f"{name} {protocol} s{seed} done", flush=True)


# ------------------------------------------------------------------------ scratch candidate detectors
class Denoising(an.AutoEncoder):
    """Autoencoder trained to reconstruct the clean row from the row plus Gaussian noise (sd 0.2)."""

    def _row_loss(self, net, xb, gen):
        import torch

        noisy = xb + 0.2 * torch.randn(xb.shape, generator=gen, device=xb.device)
        return (net(noisy) - xb).pow(2).mean(dim=1)


def _robust_scaler(X: np.ndarray):
    from anomalia.detectors.scaling import Standardizer

    med = np.median(X, axis=0)
    q1, q3 = np.percentile(X, [25, 75], axis=0)
    iqr = (q3 - q1) / 1.349
    std = X.std(axis=0)
    scale = np.where(iqr > 1e-12, iqr, np.where(std > 1e-12, std, 1.0))
    return Standardizer(med.astype(np.float32), scale.astype(np.float32))


class RobustScaled(an.AutoEncoder):
    """Autoencoder on median / IQR scaled inputs (z-score where the IQR is zero)."""

    def _fit(self, X, rng, callback=None):
        import anomalia.detectors.deep as deep

        self._resolve_widths(X.shape[1])
        orig = deep.Standardizer
        deep.Standardizer = type("R", (), {"fit": staticmethod(_robust_scaler)})
        try:
            deep.DeepDetector._fit(self, X, rng, callback)
        finally:
            deep.Standardizer = orig


class ScaledKNN(an.KNN):
    """kNN with a choice of feature scaling (scratch: not registered)."""

    scaling: str = "standard"

    def _fit(self, X, rng, callback=None):
        from anomalia.detectors.scaling import Standardizer

        if self.scaling == "standard":
            self.scaler_ = Standardizer.fit(X)
        elif self.scaling == "robust":
            self.scaler_ = _robust_scaler(X)
        elif self.scaling == "minmax":
            lo, hi = X.min(0), X.max(0)
            self.scaler_ = Standardizer(lo.astype(np.float32), np.where(hi > lo, hi - lo, 1.0).astype(np.float32))
        else:
            d = X.shape[1]
            self.scaler_ = Standardizer(np.zeros(d, np.float32), np.ones(d, np.float32))
        rows = X if X.shape[0] <= self.max_reference else X[np.sort(rng.choice(X.shape[0], self.max_reference, False))]
        self.reference_ = self.scaler_.transform(rows).astype(np.float32)


# ------------------------------------------------------------------------ candidates from the raw material
def _norm_weights(E_tr: np.ndarray, how: str, trim: float) -> np.ndarray:
    if trim > 0:  # contaminated training rows: leave the worst-reconstructed share out of the weights
        tot = E_tr.mean(1)
        E_tr = E_tr[tot <= np.quantile(tot, 1 - trim)]
    v = np.median(E_tr, 0) if how == "median" else E_tr.mean(0)
    return 1.0 / np.maximum(v, max(float(v.mean()), 1e-12) * 1e-2)


def ae_score(r: dict, tag: str, part: str, norm: str | None, trim: float) -> np.ndarray:
    E = r[f"{tag}.{part}"].astype(np.float64)
    if norm is None:
        return E.mean(1)
    return (E * _norm_weights(r[f"{tag}.tr"].astype(np.float64), norm, trim)).mean(1)


def _robust_z(cal: np.ndarray, te: np.ndarray) -> np.ndarray:
    med = np.median(cal)
    iqr = np.subtract(*np.percentile(cal, [75, 25]))
    spread = iqr if iqr > 0 else (np.std(cal) or 1.0)
    return (te - med) / spread


def bag(r: dict, tags: list[str], norm: str | None, trim: float, part: str = "te") -> np.ndarray:
    """Mean of members' scores, each put on the scale of its own calibration scores."""
    return np.mean(
        [_robust_z(ae_score(r, t, "cal", norm, trim), ae_score(r, t, part, norm, trim)) for t in tags], axis=0
    )


def candidates(r: dict, protocol: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every candidate's (calibration, test) scores of one case."""
    trim = CONTAMINATION if protocol == "unsupervised" else 0.0
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for tag in ("ae0", "drop", "narrow", "wd", "denoise", "robustscale"):
        for norm in (None, "mean", "median"):
            key = f"AE {tag}" + (f" fnorm-{norm}" if norm else "")
            out[key] = (ae_score(r, tag, "cal", norm, trim), ae_score(r, tag, "te", norm, trim))
    for k in (3, 5):
        for norm in (None, "mean", "median"):
            tags = [f"ae{i}" for i in range(k)]
            key = f"AE bag{k}" + (f" fnorm-{norm}" if norm else "")
            out[key] = (bag(r, tags, norm, trim, "cal"), bag(r, tags, norm, trim))
    for tag in ("vae", "if", "knn_standard", "knn_robust", "knn_none", "knn_minmax"):
        out[tag] = (r[f"{tag}.cal"], r[f"{tag}.te"])
    return out


def ensembles(c: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    ae = "AE ae0 fnorm-mean"
    sets = {
        "ens ae+vae+if+knn (before)": ["AE ae0", "vae", "if", "knn_standard"],
        **{
            f"ens aeW+vae+if+knn_{k}": [ae, "vae", "if", f"knn_{k}"]
            for k in ("standard", "robust", "none", "minmax")
        },
        "ens aeW+vae+knn": [ae, "vae", "knn_standard"],
        "ens aeW+if+knn": [ae, "if", "knn_standard"],
        "ens aeW+vae+if": [ae, "vae", "if"],
        "ens aeW+knn": [ae, "knn_standard"],
        "ens aeW+vae": [ae, "vae"],
        "ens vae+if+knn": ["vae", "if", "knn_standard"],
    }
    out = {}
    for key, members in sets.items():
        z = np.column_stack([_robust_z(*c[m]) for m in members])
        out[key] = z.mean(1)
        out[key.replace("ens", "ensmax")] = z.max(1)
        # rank-free alternative: z clipped below at 0 (only evidence of an anomaly counts)
        out[key.replace("ens", "ensclip")] = np.maximum(z, 0).mean(1)
    return out


def collect(which: str, seeds: list[int]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """ROC-AUC of every candidate: {(protocol, candidate): {dataset: [per seed]}}."""
    per: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name in names(which):
        for path in sorted(SCRATCH.glob(f"{name}__*.npz")):
            _, protocol, seed = path.stem.split("__")
            if int(seed) not in seeds:
                continue
            r = dict(np.load(path))
            c = candidates(r, protocol)
            scores = {k: te for k, (_, te) in c.items()} | ensembles(c)
            for k, s in scores.items():
                per[(protocol, k)][name].append(roc_auc_score(r["y"], s))
    return per


def _mean(per: dict, protocol: str, key: str) -> tuple[float, int]:
    keys = [k for (p, k) in per if p == protocol]
    common = set.intersection(*(set(per[(protocol, k)]) for k in keys))
    return float(np.mean([np.mean(per[(protocol, key)][n]) for n in common])), len(common)


def summary(args: argparse.Namespace) -> None:
    """The candidates' mean ROC-AUC on the development and the held-out datasets, both protocols."""
    dev, held = collect("dev", args.seeds), collect("heldout", args.seeds)
    keys = sorted({k for (_, k) in dev})
    cols, rows = [], []
    for k in keys:
        cells: list[object] = [k]
        for per, part in ((dev, "dev"), (held, "held-out")):
            for protocol in ("novelty", "unsupervised"):
                m, n = _mean(per, protocol, k)
                cells.append(m)
                if len(cols) < 4:
                    cols.append(f"{part} {protocol} ({n})")
        rows.append(cells)
    rows.sort(key=lambda r: -(r[1] + r[2]))
    print(markdown_table(["candidate (mean ROC-AUC)", *cols], rows))


def table(args: argparse.Namespace) -> None:
    per = collect(args.datasets, args.seeds)
    for protocol in ("novelty", "unsupervised"):
        keys = [k for (p, k) in per if p == protocol]
        if not keys:
            continue
        common = sorted(set.intersection(*(set(per[(protocol, k)]) for k in keys)))
        rows = []
        for k in keys:
            vals = [float(np.mean(per[(protocol, k)][n])) for n in common]
            rows.append([k, float(np.mean(vals)), *vals])
        rows.sort(key=lambda r: -r[1])
        short = [n.split("_", 1)[1][:10] for n in common]
        print(f"#### {protocol}: {len(common)} datasets, seeds {args.seeds}\n")
        print(markdown_table(["candidate", "mean ROC-AUC", *short], rows))
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["fit", "table", "summary"])
    ap.add_argument("--datasets", default="dev", help="dev, heldout or comma-separated names")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--protocols", nargs="+", default=["novelty", "unsupervised"])
    args = ap.parse_args()
    if args.what == "fit":
        import torch

        torch.set_num_threads(1)
        logging.disable(logging.WARNING)
        for seed in args.seeds:
            for name in names(args.datasets):
                for protocol in args.protocols:
                    fit_case(name, protocol, seed)
    elif args.what == "summary":
        summary(args)
    else:
        table(args)


if __name__ == "__main__":
    main()
