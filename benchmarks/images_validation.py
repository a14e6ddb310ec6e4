"""Choosing image-detector settings without the test split: a validation protocol on Fashion-MNIST's
training images only.

For each class c: the 6,000 training images of c are shuffled (seed 0); 5,000 are given to the detector
(which holds out its own calibration share), the other 1,000 are held-out normals; 2,000 training images of
the other classes (drawn with the same seed) are the anomalies. ROC-AUC on those 3,000 images, per class and
the mean. ``x_test`` / ``y_test`` are never read, so nothing chosen here has seen the benchmark's test split.

    nice -n 19 .venv/bin/python benchmarks/images_validation.py --run image-knn \\
        --run image-knn:gradients=false --run conv-autoencoder
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import anomalia as an
from anomalia.workflows.fit import parse_value

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "fashion_mnist" / "fashion_mnist.npz"


def split(x: np.ndarray, y: np.ndarray, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images to fit on, validation images, validation labels: 1 = another class) from the training split."""
    rng = np.random.default_rng(seed)
    own = rng.permutation(np.flatnonzero(y == c))
    other = rng.choice(np.flatnonzero(y != c), 2000, replace=False)
    fit, held = own[:5000], own[5000:6000]
    return x[fit], np.concatenate([x[held], x[other]]), np.r_[np.zeros(held.size), np.ones(other.size)]


def parse_run(spec: str) -> tuple[str, dict[str, object]]:
    """``name[:key=value,key=value]`` -> (name, params); settings as ``benchmarks/images.py`` uses them."""
    from images import SETTINGS

    name, _, rest = spec.partition(":")
    params = dict(SETTINGS.get(name, {}))
    for kv in filter(None, rest.split(",")):
        key, _, value = kv.partition("=")
        params[key] = parse_value(value)
    return name, params


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, metavar="NAME[:KEY=VALUE,...]")
    p.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    z = np.load(DATA)
    x, y = z["x_train"], z["y_train"]  # the training split only
    rows = []
    for spec in args.run:
        name, params = parse_run(spec)
        for c in args.classes:
            fit, val, label = split(x, y, c)
            cpu = time.process_time()
            det = an.make_detector(name, **params, random_state=0).fit(fit)
            cpu = time.process_time() - cpu
            auc = float(roc_auc_score(label, det.anomaly_score(val)))
            rows.append({"run": spec, "class": c, "roc_auc": auc, "fit_cpu_s": cpu})
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    print("| run | " + " | ".join(str(c) for c in args.classes) + " | mean |")
    print("|---|" + "---|" * (len(args.classes) + 1))
    for spec in args.run:
        aucs = [r["roc_auc"] for r in rows if r["run"] == spec]
        print(f"| `{spec}` | " + " | ".join(f"{a:.3f}" for a in aucs) + f" | **{np.mean(aucs):.3f}** |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
