"""Packaged embeddings (extra ``anomalia[embeddings]``): the weights come from the installed wheel's own files,
with the network off; the vectors feed any table detector; without the package, the install command."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest

import anomalia as an
from anomalia.data.embeddings import PackagedEmbeddings

pytest.importorskip("wordllama", reason="the embeddings extra (pip install 'anomalia[embeddings]') is not installed")


@pytest.fixture
def network_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_loads_from_the_wheel_with_the_network_off(network_off) -> None:
    emb = PackagedEmbeddings()
    X = emb.transform(["the meeting is at noon", "the meeting is at noon today", "WIN a FREE prize, call now", ""])
    assert X.shape == (4, 256) and X.dtype == np.float32 and np.isfinite(X).all()
    np.testing.assert_allclose(np.linalg.norm(X[:3], axis=1), 1.0, rtol=1e-5)
    assert not X[3].any()  # no tokens, no direction
    sim = X @ X.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # a near-duplicate is much closer than an unrelated text
    info = emb.info()
    assert info["package"] == "wordllama" and info["licence"].startswith("MIT") and info["dim"] == 256


def test_vectors_feed_a_table_detector(network_off) -> None:
    emb = PackagedEmbeddings()
    rng = np.random.default_rng(0)
    people, places = ["I", "we", "they", "you"], ["home", "work", "the station", "dinner", "the gym"]
    normal = [f"{rng.choice(people)} will be at {rng.choice(places)} around {rng.integers(1, 12)}" for _ in range(300)]
    det = an.make_detector("knn", random_state=0).fit(emb.transform(normal))
    s = det.anomaly_score(emb.transform([normal[0] + " then", "URGENT your account is suspended, verify your card"]))
    assert s[1] > s[0]


def test_without_the_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wordllama", None)
    with pytest.raises(ImportError, match=r"pip install 'anomalia\[embeddings\]'"):
        PackagedEmbeddings().transform(["x"])
