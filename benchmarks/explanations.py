"""Which column do explanations name? Anomalies that are a +6 sigma shift of one numeric column ``b``, in a
table with correlated numbers and an unpredictable 5-value text column (the data of
tests/test_hardening.py's explanation test), scored by the default autoencoder (the command line's
``anomalia fit train.csv``: no ``--set``), for several seeds.

Counts, over the 60 anomalies, the top feature of each row three ways: the plain shares of the score, the
shares relative to each column's part on held-out normal rows (one pass), and the shipped explanation (those
relative shares, with each flagged row's top five re-ranked by how much repairing each column lowers its
score).

    nice -n 19 .venv/bin/python benchmarks/explanations.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import anomalia as an
from _common import machine, markdown_table
from test_hardening import shifted_with_category


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train, test = shifted_with_category(Path(tmp))
        frame, new = pd.read_csv(train), pd.read_csv(test)
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        model = an.fit(frame, "autoencoder", random_state=seed)
        seconds = time.perf_counter() - start
        det, names = model.detector, model.encoder.input_columns
        X = model.encode(new)
        parts = model.encoder.group_shares(det._feature_scores(X))
        usual = model.encoder.group_shares(det.feature_scale_[None, :])
        plain = np.asarray(names)[parts.argmax(axis=1)]
        relative = np.asarray(names)[(parts / usual).argmax(axis=1)]
        scored = model.score(new, explain="all", top_k=3)
        shipped = np.asarray([r["contributions"][0]["feature"] for r in scored.to_records()])
        rows.append(
            [
                seed,
                int(scored.is_anomaly.sum()),
                f"{int((plain == 'b').sum())} (colour {int((plain == 'colour').sum())})",
                f"{int((relative == 'b').sum())} (colour {int((relative == 'colour').sum())})",
                f"{int((shipped == 'b').sum())} (colour {int((shipped == 'colour').sum())})",
                f"{seconds:.0f}",
            ]
        )
        print(rows[-1], flush=True)
    header = ["seed", "flagged of 60", "plain shares: b top", "relative shares: b top", "shipped: b top", "fit s"]
    print(markdown_table(header, rows))
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
