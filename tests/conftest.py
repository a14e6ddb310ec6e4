"""Shared fixtures: real data location, small deterministic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from redis_server import redis_server  # noqa: F401  (session fixture: a real redis-server on loopback)

# One intra-op thread: on a shared 2-core machine two torch threads spin against each other and the suite's
# time swings several-fold. Tests that measure threading set their own.
torch.set_num_threads(1)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a reason when it is absent (a user's clone)."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: real benchmark data is only present in CI and on dev machines")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def blobs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlated normal training rows, normal test rows and clearly anomalous test rows (6 features)."""
    cov = np.eye(6) + 0.8 * (np.ones((6, 6)) - np.eye(6))
    train = rng.multivariate_normal(np.zeros(6), cov, size=600).astype(np.float32)
    normal = rng.multivariate_normal(np.zeros(6), cov, size=200).astype(np.float32)
    anomalies = rng.normal(0, 3, size=(40, 6)).astype(np.float32)
    return train, normal, anomalies


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium (installed by `make test`) driven by Playwright, one per test module."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: `make test` installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
