"""Small mixed-type tables written to files, shared by the data, workflow, CLI and report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Cheap detector settings for file tests.
FAST = ["epochs=3", "hidden=8,4", "batch_size=64"]


def mixed_frame(n: int = 400, n_anomalies: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Numbers, a text column, a boolean and a label column; anomalies break the a-c relation."""
    n_anomalies = n // 10 if n_anomalies is None else n_anomalies
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "a": a,
            "b": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], n),
            "ok": rng.random(n) < 0.5,
            "c": 2 * a + rng.normal(scale=0.1, size=n),
        }
    )
    y = np.zeros(n, dtype=int)
    y[:n_anomalies] = 1
    df.loc[: n_anomalies - 1, "c"] += rng.choice([-6.0, 6.0], n_anomalies)
    df["label"] = y
    return df


def write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path
