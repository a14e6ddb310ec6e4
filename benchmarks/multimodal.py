"""False alarms of records with several correlated parts: one calibrated fused score against combining the
parts' own p-values (Fisher, Stouffer: they assume independent parts; Bonferroni: valid under any dependence).

Simulation (tests/test_multimodal.py's): ``k`` parts of 3 features, each scored by PCA (one component); the
part scores correlate at 0.5 between parts. 12,000 normal records to fit (40 % calibrate the fused score,
20 % fit the per-part scales), 100,000 normal records to count false alarms, and 20,000 records whose part 0
breaks its structure (residual shifted by ``--shift``) to measure detection. Seeds 0, 1, 2; mean (min-max).

    .venv/bin/python benchmarks/multimodal.py --markdown out.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from anomalia.detectors import PCA, MultiModalDetector
from test_multimodal import correlated_parts


def rates(k: int, alpha: float, seed: int, shift: float) -> dict[str, tuple[float, float]]:
    X = correlated_parts(np.random.default_rng(seed), 12000, k)
    out = {}
    normal = correlated_parts(np.random.default_rng(1000 + seed), 100000, k)
    odd = correlated_parts(np.random.default_rng(2000 + seed), 20000, k)
    odd["p0"] = odd["p0"] + np.float32(0.3 * shift) * np.array([1, -1, 0], np.float32)
    for fusion in ("max", "sum"):
        det = MultiModalDetector(
            parts={f"p{j}": PCA(n_components=1) for j in range(k)},
            fusion=fusion,
            threshold=f"false-alarm:{alpha}",
            calibration_fraction=0.4,
            random_state=seed,
        ).fit(X)
        flagged = (float((det.p_value(normal) <= alpha).mean()), float((det.p_value(odd) <= alpha).mean()))
        out[f"fused {fusion} (ours)"] = flagged
    combos = {}
    for name, T in (("normal", normal), ("odd", odd)):
        P = np.stack(list(det.part_p_values(T).values()), axis=1)
        combos[name] = {
            "Bonferroni": np.minimum(1.0, k * P.min(axis=1)),
            "Fisher": stats.chi2.sf(-2 * np.log(P).sum(axis=1), 2 * k),
            "Stouffer": stats.norm.sf(stats.norm.isf(P).sum(axis=1) / np.sqrt(k)),
        }
    for name in ("Bonferroni", "Fisher", "Stouffer"):
        out[name] = (float((combos["normal"][name] <= alpha).mean()), float((combos["odd"][name] <= alpha).mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", type=int, default=[2, 4])
    ap.add_argument("--alphas", nargs="+", type=float, default=[0.01, 0.05])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--shift", type=float, default=4.0)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    lines = ["| parts | alpha | method | false-alarm rate | / alpha | detected (part 0 broken) |", "|---" * 6 + "|"]
    for k in args.parts:
        for alpha in args.alphas:
            runs = [rates(k, alpha, s, args.shift) for s in args.seeds]
            for method in runs[0]:
                far = np.array([r[method][0] for r in runs])
                det = np.array([r[method][1] for r in runs])
                lines.append(
                    f"| {k} | {alpha:g} | {method} | {far.mean():.4f} ({far.min():.4f}–{far.max():.4f}) | "
                    f"{far.mean() / alpha:.2f} | {det.mean():.3f} |"
                )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
