"""Isolation forest baseline: scikit-learn grows the trees; the trees are kept as plain arrays, scored here
in numpy, and saved with safetensors (no pickle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._core import child_seed
from .._core.params import Rule, interval
from .base import BaseDetector
from .registry import register

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest as _SkIsolationForest

_EULER = 0.5772156649015329


def average_path_length(n: np.ndarray) -> np.ndarray:
    """``c(n)``: mean depth of an unsuccessful search in a binary search tree of ``n`` points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _pack(forest: _SkIsolationForest) -> dict[str, np.ndarray]:
    """The trees as padded (n_trees, max_nodes) arrays; leaves point to themselves."""
    trees = [est.tree_ for est in forest.estimators_]
    width = max(t.node_count for t in trees)
    shape = (len(trees), width)
    left = np.zeros(shape, np.int32)
    right = np.zeros(shape, np.int32)
    feature = np.zeros(shape, np.int32)
    threshold = np.zeros(shape, np.float64)
    leaf_depth = np.zeros(shape, np.float64)
    for i, (t, feats) in enumerate(zip(trees, forest.estimators_features_, strict=True)):
        m = t.node_count
        is_leaf = t.children_left[:m] < 0
        idx = np.arange(m)
        left[i, :m] = np.where(is_leaf, idx, t.children_left[:m])
        right[i, :m] = np.where(is_leaf, idx, t.children_right[:m])
        feature[i, :m] = np.where(is_leaf, 0, np.asarray(feats)[np.maximum(t.feature[:m], 0)])
        threshold[i, :m] = t.threshold[:m]
        depth = np.zeros(m)
        for node in range(m):  # children always have higher ids than their parent
            if not is_leaf[node]:
                depth[t.children_left[node]] = depth[t.children_right[node]] = depth[node] + 1
        leaf_depth[i, :m] = depth + average_path_length(t.n_node_samples[:m])
    depth_max = max(t.max_depth for t in trees)
    return {
        "left": left,
        "right": right,
        "feature": feature,
        "threshold": threshold,
        "leaf_depth": leaf_depth,
        "max_depth": np.array([depth_max], np.int32),
    }


def score_forest(trees: dict[str, np.ndarray], X: np.ndarray, max_samples: int, chunk: int = 8192) -> np.ndarray:
    """Isolation score ``2 ** (-E[h(x)] / c(max_samples))`` of each row (Liu et al. 2008)."""
    n_trees = trees["left"].shape[0]
    rows_t = np.arange(n_trees)[:, None]
    out = np.empty(X.shape[0])
    norm = average_path_length(np.array([max_samples]))[0]
    for s in range(0, X.shape[0], chunk):
        xb = X[s : s + chunk]
        node = np.zeros((n_trees, xb.shape[0]), np.int64)
        cols = np.arange(xb.shape[0])[None, :]
        for _ in range(int(trees["max_depth"][0])):
            f = trees["feature"][rows_t, node]
            go_left = xb[cols, f] <= trees["threshold"][rows_t, node]
            node = np.where(go_left, trees["left"][rows_t, node], trees["right"][rows_t, node])
        depth = trees["leaf_depth"][rows_t, node].mean(axis=0)
        out[s : s + chunk] = 2.0 ** (-depth / norm)
    return out


@register("isolation-forest")
class IsolationForest(BaseDetector):
    """Isolation forest (Liu et al. 2008) on the anomalia API; a baseline for honest comparison.

    Parameters follow :class:`sklearn.ensemble.IsolationForest`; ``contamination`` and ``threshold`` act
    as in :class:`~anomalia.AutoEncoder`. The score equals scikit-learn's ``-score_samples``.
    """

    parameter_rules = {
        "n_estimators": [interval(1, None, integer=True)],
        "max_samples": [interval(2, None, integer=True), Rule(lambda v: v == "auto", "'auto'")],
    }
    test_params = {"n_estimators": 10}

    n_estimators: int = 100
    max_samples: int | str = "auto"

    def _fit(self, X: np.ndarray, rng: np.random.Generator, callback: Any = None) -> None:
        from sklearn.ensemble import IsolationForest as _SkIsolationForest  # on first use: it slows start-up

        forest = _SkIsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=child_seed(rng)
        ).fit(X)
        self.max_samples_ = int(forest.max_samples_)
        self.trees_ = _pack(forest)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return score_forest(self.trees_, X, self.max_samples_)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._get_state()
        meta["state"]["max_samples"] = self.max_samples_
        return meta, {**arrays, **{f"trees.{k}": v for k, v in self.trees_.items()}}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(meta, arrays)
        self.max_samples_ = int(meta["state"]["max_samples"])
        self.trees_ = {k.removeprefix("trees."): v for k, v in arrays.items() if k.startswith("trees.")}
