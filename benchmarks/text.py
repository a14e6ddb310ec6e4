"""Text detectors on SMS spam, one-class protocol, beside a nearest-neighbour baseline in the same run.

Protocol: normal = ham. With seed s, shuffle the ham messages, fit on 60 % of them, test on the other 40 %
plus every spam message (../shared/data/text/sms_spam). ROC-AUC, PR-AUC (average precision), the detection
rate at 1 % false alarms (the share of spam scored above all but 1 % of the test ham), and at the model's
own calibrated threshold (``false-alarm:0.01``, fitted on held-out training ham) the observed false-alarm
rate and recall. Seeds 0, 1, 2; the mean and the spread (min-max) are reported.

Baseline: word TF-IDF with an exact vocabulary (scikit-learn's ``TfidfVectorizer``) and the cosine
distance to the nearest training message (``NearestNeighbors``), the plain nearest-neighbour detector.

Packaged embeddings: WordLlama's vectors, read from its wheel (``anomalia[embeddings]``), scored by the
``knn`` detector (``--detectors "packaged embeddings + knn"``).

Fit time is wall time and process CPU time (all threads) of ``fit``; torch runs on ``--threads`` threads.

    nice -n 5 .venv/bin/python benchmarks/text.py --markdown out.md
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

import anomalia as an

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "sms_spam" / "SMSSpamCollection.tsv"


def load_sms(path: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """Messages and labels (1 = spam) of the SMS spam collection."""
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)  # header: Label, SMS
        for row in reader:
            labels.append(1 if row[0] == "spam" else 0)
            texts.append("\t".join(row[1:]))
    return np.asarray(texts, dtype=object), np.asarray(labels, dtype=np.int64)


def split(y: np.ndarray, seed: int, train_share: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """One-class split: indices of the training ham and of the test messages (held-out ham + all spam)."""
    ham = np.flatnonzero(y == 0)
    ham = ham[np.random.default_rng(seed).permutation(ham.size)]
    n_train = round(train_share * ham.size)
    return np.sort(ham[:n_train]), np.sort(np.r_[ham[n_train:], np.flatnonzero(y == 1)])


def detection_at(scores: np.ndarray, y: np.ndarray, far: float = 0.01) -> float:
    """Share of anomalies scored above the (1 - far) quantile of the normal scores."""
    cut = np.quantile(scores[y == 0], 1.0 - far, method="higher")
    return float((scores[y == 1] > cut).mean())


class WordNearestNeighbour:
    """Baseline: word TF-IDF (exact vocabulary of the training text) + cosine distance to the nearest one."""

    def fit(self, texts: np.ndarray) -> WordNearestNeighbour:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.neighbors import NearestNeighbors

        self.vec = TfidfVectorizer(sublinear_tf=True).fit(texts)
        self.nn = NearestNeighbors(n_neighbors=1, metric="cosine").fit(self.vec.transform(texts))
        return self

    def anomaly_score(self, texts: np.ndarray) -> np.ndarray:
        return self.nn.kneighbors(self.vec.transform(texts))[0][:, 0]


class PackagedEmbeddingKNN:
    """Packaged embeddings (``anomalia[embeddings]``: WordLlama's vectors from its wheel) + the ``knn`` detector."""

    def __init__(self, seed: int) -> None:
        from anomalia.data.embeddings import PackagedEmbeddings

        self.emb, self.seed = PackagedEmbeddings(), seed

    def fit(self, texts: np.ndarray) -> PackagedEmbeddingKNN:
        self.det = an.make_detector("knn", random_state=self.seed).fit(self.emb.transform(list(texts)))
        return self

    def anomaly_score(self, texts: np.ndarray) -> np.ndarray:
        return self.det.anomaly_score(self.emb.transform(list(texts)))


def make(name: str, seed: int, params: dict[str, object]) -> object:
    if name == "word-nn (baseline)":
        return WordNearestNeighbour()
    if name == "packaged embeddings + knn":
        return PackagedEmbeddingKNN(seed)
    return an.make_detector(name, random_state=seed, **params)


def run(names: list[str], seeds: list[int], params: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    texts, y = load_sms()
    out = []
    for name in names:
        for seed in seeds:
            train, test = split(y, seed)
            det = make(name, seed, params.get(name, {}))
            wall, cpu = time.perf_counter(), time.process_time()
            det.fit(texts[train])  # type: ignore[attr-defined]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            s = det.anomaly_score(texts[test])  # type: ignore[attr-defined]
            yt = y[test]
            row: dict[str, object] = {
                "detector": name,
                "seed": seed,
                "roc_auc": roc_auc_score(yt, s),
                "pr_auc": average_precision_score(yt, s),
                "detect_at_1pct": detection_at(s, yt),
                "fit_wall_s": wall,
                "fit_cpu_s": cpu,
                "n_train": int(train.size),
                "n_test": int(test.size),
                "n_spam": int(yt.sum()),
            }
            if isinstance(det, an.BaseDetector):
                flags = det.decide(s)
                row["far_at_threshold"] = float(flags[yt == 0].mean())
                row["recall_at_threshold"] = float(flags[yt == 1].mean())
                if isinstance(det, an.TextLM):  # the label-free selection figure (benchmarks/text_lm_select.py)
                    row["held_out_nll"] = float(np.mean(det.anomaly_score(det.calibration_rows_)))
                hist = getattr(det, "history_", None)
                if hist:
                    row["epochs"] = len(hist[-1]["train_loss"])
            out.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return out


def markdown(rows: list[dict[str, object]]) -> str:
    keys = ["roc_auc", "pr_auc", "detect_at_1pct", "far_at_threshold", "recall_at_threshold", "held_out_nll"]
    keys += ["fit_wall_s", "fit_cpu_s"]
    head = "| detector | ROC-AUC | PR-AUC | detected at 1 % FAR | FAR at its threshold | recall there "
    head += "| held-out ham NLL | fit wall s | fit CPU s |"
    lines = [head, "|" + "---|" * 9]
    for name in dict.fromkeys(r["detector"] for r in rows):
        mine = [r for r in rows if r["detector"] == name]
        cells = []
        for k in keys:
            vals = np.array([float(r[k]) for r in mine if k in r])  # type: ignore[arg-type]
            if vals.size == 0:
                cells.append("—")
            elif k.startswith("fit"):
                cells.append(f"{vals.mean():.1f} ({vals.min():.1f}–{vals.max():.1f})")
            else:
                cells.append(f"{vals.mean():.3f} ({vals.min():.3f}–{vals.max():.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", default=["word-nn (baseline)", "text", "text-lm"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--lm-params", default="{}", help="a JSON object of extra text-lm parameters")
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--merge", nargs="+", type=Path, help="only print the table of these --json outputs")
    args = ap.parse_args()
    if args.merge:
        rows = [r for path in args.merge for r in json.loads(path.read_text())]
        order = {name: i for i, name in enumerate(args.detectors)}
        rows.sort(key=lambda r: (order.get(str(r["detector"]), 99), int(r["seed"])))  # type: ignore[call-overload]
        print(markdown(rows))
        return
    torch.set_num_threads(args.threads)
    params: dict[str, dict[str, object]] = {"text-lm": {"device": args.device, **json.loads(args.lm_params)}}
    rows = run(args.detectors, args.seeds, params)
    table = markdown(rows)
    note = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads"
    print(table)
    print(note)
    if args.markdown:
        args.markdown.write_text(table + "\n\n" + note + "\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
