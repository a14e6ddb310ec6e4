"""MultiModalDetector: one calibrated p-value for records of several parts, whatever their dependence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone

import anomalia as an
from anomalia.detectors import PCA, MultiModalDetector, TextDetector

ALPHA = 0.05


def correlated_parts(rng: np.random.Generator, n: int, k: int = 2, score_corr: float = 0.5) -> dict[str, np.ndarray]:
    """``k`` parts of 3 features whose PCA scores (squared residuals) correlate at ``score_corr`` between parts.

    Each part is (g + 0.3 d, g - 0.3 d, g): one principal direction g and a residual d; the residuals of the
    parts share one factor so that corr(d_a, d_b) = sqrt(score_corr), hence corr(d_a^2, d_b^2) = score_corr.
    """
    r = np.sqrt(score_corr)
    shared = rng.normal(size=n)
    out = {}
    for j in range(k):
        d = np.sqrt(r) * shared + np.sqrt(1 - r) * rng.normal(size=n)
        g = rng.normal(size=n)
        out[f"p{j}"] = np.stack([g + 0.3 * d, g - 0.3 * d, g + 0.01 * rng.normal(size=n)], axis=1).astype(np.float32)
    return out


def fitted_parts(seed: int, k: int, fusion: str = "max") -> MultiModalDetector:
    X = correlated_parts(np.random.default_rng(seed), 12000, k)
    parts = {f"p{j}": PCA(n_components=1) for j in range(k)}
    det = MultiModalDetector(
        parts=parts, fusion=fusion, threshold=f"false-alarm:{ALPHA}", calibration_fraction=0.4, random_state=seed
    )
    return det.fit(X)


@pytest.mark.parametrize("fusion", ["max", "sum"])
def test_false_alarm_rate_is_alpha_on_correlated_parts(fusion: str) -> None:
    # 4,800 calibration records: the false-alarm rate of one calibration draw has a standard deviation of about
    # 6 % of alpha, so alpha +- 20 % is over 3 standard deviations; 40,000 normal test records per seed
    for seed in range(3):
        det = fitted_parts(seed, 2, fusion)
        T = correlated_parts(np.random.default_rng(100 + seed), 40000, 2)
        scores = {n: d.anomaly_score(T[n]) for n, d in det.parts_.items()}
        assert abs(np.corrcoef(scores["p0"], scores["p1"])[0, 1] - 0.5) < 0.05  # the parts really are correlated
        far = det.is_anomaly(T).mean()
        assert 0.8 * ALPHA <= far <= 1.2 * ALPHA, (seed, far)
        np.testing.assert_array_equal(det.is_anomaly(T), det.p_value(T) <= ALPHA)  # one p-value, one decision


def test_fisher_and_stouffer_exceed_alpha_where_the_fused_p_value_does_not() -> None:
    # the per-part p-values are each valid; combining them as if the parts were independent is not
    det = fitted_parts(0, 4)
    T = correlated_parts(np.random.default_rng(7), 40000, 4)
    P = np.stack(list(det.part_p_values(T).values()), axis=1)
    fisher = stats.chi2.sf(-2 * np.log(P).sum(axis=1), 2 * P.shape[1])
    stouffer = stats.norm.sf(stats.norm.isf(P).sum(axis=1) / np.sqrt(P.shape[1]))
    assert (fisher <= ALPHA).mean() > 1.4 * ALPHA
    assert (stouffer <= ALPHA).mean() > 1.4 * ALPHA
    assert (det.p_value(T) <= ALPHA).mean() <= 1.2 * ALPHA
    assert (det.bonferroni_p_value(T) <= ALPHA).mean() <= ALPHA  # valid, conservative


def records(rng: np.random.Generator, n: int) -> pd.DataFrame:
    words = ["user", "login", "ok", "session", "opened", "closed", "request", "served", "from", "cache"]
    text = [" ".join(rng.choice(words, size=5)) for _ in range(n)]
    values = rng.normal(size=(n, 3))
    return pd.DataFrame({"a": values[:, 0], "b": values[:, 1], "c": values[:, 0] + 0.1 * values[:, 2], "msg": text})


@pytest.fixture(scope="module")
def table_and_text() -> tuple[MultiModalDetector, pd.DataFrame]:
    frame = records(np.random.default_rng(0), 600)
    parts = {"metrics": PCA(n_components=2), "message": TextDetector(n_features=2**12)}
    det = MultiModalDetector(parts=parts, columns={"metrics": ["a", "b", "c"], "message": "msg"}, random_state=0)
    return det.fit(frame), records(np.random.default_rng(1), 40)


def test_explanations_name_the_part_then_what_inside_it(table_and_text) -> None:
    det, frame = table_and_text
    odd = frame.copy()
    odd.loc[0, "msg"] = "kernel panic segfault 0xdeadbeef"
    odd.loc[1, "c"] = odd.loc[1, "a"] + 8.0  # breaks the a ~ c relation
    p = det.p_value(odd)
    assert p[0] < 0.05 and p[1] < 0.05 and np.median(p[2:]) > 0.2
    why = det.explain(odd)
    assert why[0]["part"] == "message" and why[0]["top"][0][0] in {"kernel", "panic", "segfault", "0xdeadbeef"}
    assert why[1]["part"] == "metrics" and why[1]["top"][0][0] in {"a", "c"}
    assert set(why[2]["part_scores"]) == {"metrics", "message"}
    rows = an.Model(det, name="m").score(odd)
    assert rows.contributions is not None and rows.contributions.of(0)[0][0] == "message"
    np.testing.assert_array_equal(rows.score, det.anomaly_score(odd))


def test_a_dict_of_parts_and_a_frame_with_a_column_map_are_the_same(table_and_text) -> None:
    det, frame = table_and_text
    as_dict = {"metrics": frame[["a", "b", "c"]].to_numpy(np.float32), "message": frame["msg"].tolist()}
    np.testing.assert_allclose(det.anomaly_score(as_dict), det.anomaly_score(frame), rtol=1e-6)


def test_save_load_same_seed_and_clone(table_and_text, tmp_path) -> None:
    det, frame = table_and_text
    det.save(tmp_path / "m")
    back = an.load(tmp_path / "m")
    assert isinstance(back, MultiModalDetector) and set(back.parts_) == {"metrics", "message"}
    np.testing.assert_array_equal(back.anomaly_score(frame), det.anomaly_score(frame))
    np.testing.assert_array_equal(back.p_value(frame), det.p_value(frame))
    model = an.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.score(frame).p_value, det.p_value(frame))
    twin = clone(det).fit(records(np.random.default_rng(0), 600))
    np.testing.assert_array_equal(twin.anomaly_score(frame), det.anomaly_score(frame))


def test_bad_records_give_our_errors(table_and_text) -> None:
    det, frame = table_and_text
    bad = {
        "a part missing": {"metrics": frame[["a", "b", "c"]].to_numpy()},
        "parts of other lengths": {"metrics": frame[["a", "b", "c"]].to_numpy(), "message": ["x"] * 3},
        "not a dict": frame[["a", "b", "c"]].to_numpy(),
        "None": None,
        "a column missing": frame.drop(columns=["msg"]),
    }
    for case, X in bad.items():
        with pytest.raises(an.AnomaliaError) as info:
            det.anomaly_score(X)
        assert isinstance(info.value, ValueError | TypeError) and len(str(info.value)) > 20, case
    with pytest.raises(an.ParameterError, match="parts"):
        MultiModalDetector(parts={}).fit({})
    with pytest.raises(an.ParameterError, match="fusion"):
        MultiModalDetector(parts={"a": PCA()}, fusion="fisher").fit({"a": np.zeros((50, 2))})
    with pytest.raises(an.NotFittedError):
        MultiModalDetector(parts={"a": PCA()}).anomaly_score({"a": np.zeros((5, 2))})
    with pytest.raises(an.InputError, match="DataFrame"):
        MultiModalDetector(parts={"a": PCA()}).fit(frame)


def test_readme_example_runs(capsys) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Records with several parts") : readme.index("## Contributing")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (records with several parts)", "exec"), {})
    out = capsys.readouterr().out
    assert "[0.9983 0.0017]" in out and "metrics ('x1'" in out
