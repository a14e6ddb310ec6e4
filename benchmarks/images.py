"""Image detectors on the one-class Fashion-MNIST protocol, and their scoring speed.

Protocol (../shared/data/README.md; Ruff et al. 2018, Golan & El-Yaniv 2018): for each class c, fit on the
training images of class c only, score all 10,000 test images, anomaly = any other class; ROC-AUC per class
and the mean over the 10 classes. Training time per class is reported as wall time and as process CPU
time (the machine's cores are shared, so wall time depends on what else runs).

Speed: images/s of ``detector.anomaly_score`` on the 10,000 test images against a bare torch forward pass
of the same trained network over the same images (already standardised tensors, same batch size), in
the same process; best of ``--repeats`` interleaved runs of each.

    nice -n 5 .venv/bin/python benchmarks/images.py --detectors conv-autoencoder geom --markdown out.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import anomalia as an
from anomalia.nn.conv import transform_all
from anomalia.workflows.fit import parse_value

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "fashion_mnist" / "fashion_mnist.npz"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

#: The settings benchmarked (each class must train in at most 3 minutes on 2 CPU cores).
SETTINGS: dict[str, dict[str, object]] = {
    "conv-autoencoder": {
        "channels": (16, 32, 64),
        "latent": 32,
        "smoothing": 2.0,
        "normalise": True,
        "epochs": 5,
        "batch_size": 64,
    },
    "geom": {"channels": (16, 32, 64), "flips": False, "epochs": 5, "batch_size": 32},
    "image-knn": {},  # its defaults: 5 neighbours (mean distance), blur 1 px, pixels + orientation histograms
}


class PixelBaseline:
    """A classical baseline on the raw pixels scaled to [0, 1] (no standardisation), for comparison only.

    ``pca-pixels``: reconstruction error from the principal subspace keeping 90 % of the variance (the share
    anomalia's PCA keeps by default); ``knn-pixels``: Euclidean distance to the 5th nearest training image
    (anomalia's kNN default). Both settings were fixed before any run.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.history_: list[dict[str, list[float]]] = []

    def fit(self, X: np.ndarray) -> PixelBaseline:
        Z = X.reshape(X.shape[0], -1).astype(np.float32) / 255.0
        if self.kind == "pca-pixels":
            from sklearn.decomposition import PCA

            self.model = PCA(n_components=0.9, svd_solver="full").fit(Z)
        else:
            self.reference = Z
        return self

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        Z = X.reshape(X.shape[0], -1).astype(np.float32) / 255.0
        if self.kind == "pca-pixels":
            back = self.model.inverse_transform(self.model.transform(Z))
            return ((Z - back) ** 2).mean(axis=1)
        from anomalia.detectors.knn import knn_distances

        return knn_distances(self.reference, Z, 5)[:, -1]


BASELINES = ("pca-pixels", "knn-pixels")


def bare_forward(det: an.BaseDetector, X: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds for the detector's network alone over ``X`` (standardised beforehand, not timed)."""
    net = det.net_.eval()
    Z = torch.from_numpy(det.scaler_.transform(X.astype(np.float32)[:, None]))
    bs = det._score_batch_size()
    geom = det.name == "geom"
    outs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, Z.shape[0], bs):
            xb = Z[i : i + bs]
            outs.append(net(transform_all(xb, det._transforms)) if geom else net(xb))
    return time.perf_counter() - start, outs[0].numpy()


def speed(det: an.BaseDetector, X: np.ndarray, repeats: int) -> dict[str, float]:
    ours, bare = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        det.anomaly_score(X)
        ours.append(time.perf_counter() - start)
        bare.append(bare_forward(det, X)[0])
    n = X.shape[0]
    return {"ours_img_s": n / min(ours), "bare_img_s": n / min(bare), "ratio": min(bare) / min(ours)}


def run_class(
    name: str, c: int, data: dict[str, np.ndarray], seed: int, overrides: dict[str, object]
) -> dict[str, object]:
    x_train = data["x_train"][data["y_train"] == c]
    if name in BASELINES:
        det = PixelBaseline(name)
    else:
        det = an.make_detector(name, **{**SETTINGS[name], **overrides}, random_state=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    det.fit(x_train)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    start = time.perf_counter()
    scores = det.anomaly_score(data["x_test"])
    score_s = time.perf_counter() - start
    auc = roc_auc_score(data["y_test"] != c, scores)
    epochs = sum(len(h["train_loss"]) for h in getattr(det, "history_", []))  # no training: 0
    return {
        "detector": name,
        "class": c,
        "roc_auc": float(auc),
        "fit_wall_s": wall,
        "fit_cpu_s": cpu,
        "epochs_run": epochs,
        "score_s": score_s,
        "det": det,
    }


def markdown(rows: list[dict[str, object]], speeds: dict[str, dict[str, float]]) -> str:
    names = list(dict.fromkeys(r["detector"] for r in rows))
    by = {(r["detector"], r["class"]): r for r in rows}
    classes = sorted({r["class"] for r in rows})
    head = "| class | " + " | ".join(f"{n} ROC-AUC | fit s (wall / CPU) | epochs" for n in names) + " |"
    sep = "|---|" + "---|---|---|" * len(names)
    lines = [head, sep]
    for c in classes:
        cells = []
        for n in names:
            r = by.get((n, c))
            cells += (
                ["–", "–", "–"]
                if r is None
                else [f"{r['roc_auc']:.3f}", f"{r['fit_wall_s']:.0f} / {r['fit_cpu_s']:.0f}", str(r["epochs_run"])]
            )
        lines.append(f"| {c} {CLASSES[c]} | " + " | ".join(cells) + " |")
    means = []
    for n in names:
        rs = [by[(n, c)] for c in classes if (n, c) in by]
        means += [
            f"**{np.mean([r['roc_auc'] for r in rs]):.3f}**" + (f" ({len(rs)})" if len(rs) < len(classes) else ""),
            f"max {max(r['fit_wall_s'] for r in rs):.0f} / {max(r['fit_cpu_s'] for r in rs):.0f}",
            "",
        ]
    lines.append("| mean | " + " | ".join(means) + " |")
    if speeds:
        lines += ["", "| detector | anomaly_score img/s | bare torch forward img/s | ratio |", "|---|---|---|---|"]
        for n, s in speeds.items():
            lines.append(f"| {n} | {s['ours_img_s']:.0f} | {s['bare_img_s']:.0f} | {s['ratio']:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detectors", nargs="+", default=list(SETTINGS), choices=[*SETTINGS, *BASELINES])
    p.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved timing runs for the speed table")
    p.add_argument("--markdown", type=Path, help="also write the tables to this file")
    p.add_argument("--json", type=Path, help="also write every row to this file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="DETECTOR:KEY=VALUE",
        help="override a benchmarked setting, e.g. conv-autoencoder:smoothing=0 (repeatable)",
    )
    p.add_argument("--from-json", type=Path, nargs="+", help="only print the tables of earlier --json files")
    args = p.parse_args(argv)
    if args.from_json:
        saved = [json.loads(f.read_text()) for f in args.from_json]
        rows = [r for d in saved for r in d["rows"]]
        speeds = {k: v for d in saved for k, v in d["speeds"].items()}
        print(markdown(rows, speeds))
        return 0
    if not DATA.exists():
        print(f"{DATA} is absent: this benchmark needs ../shared/data", file=sys.stderr)
        return 2
    overrides: dict[str, dict[str, object]] = {}
    for item in args.set:
        name, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        overrides.setdefault(name, {})[key] = parse_value(value)
    torch.set_num_threads(args.threads)
    z = np.load(DATA)
    data = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    print(
        f"# {platform.machine()} {torch.get_num_threads()} torch threads, python {platform.python_version()}, "
        f"torch {torch.__version__}",
        flush=True,
    )
    rows, speeds = [], {}
    for name in args.detectors:
        for c in args.classes:
            r = run_class(name, c, data, args.seed, overrides.get(name, {}))
            det = r.pop("det")
            if name not in speeds and hasattr(det, "net_"):  # a network to compare with
                speeds[name] = speed(det, data["x_test"], args.repeats)
                print(f"{name} speed {json.dumps({k: round(v, 3) for k, v in speeds[name].items()})}", flush=True)
            rows.append(r)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}), flush=True)
            if args.json:
                args.json.write_text(json.dumps({"rows": rows, "speeds": speeds}, indent=1))
    table = markdown(rows, speeds)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
