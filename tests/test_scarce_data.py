"""Scarce normal data: VAE.sample (and Model.sample through the encoder), augmentation calibrated on real rows
only, and `anomalia diagnose` / `an.diagnose` (learning curve, calibration size, feature warnings, advice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import anomalia as an
from anomalia.cli import main
from anomalia.model import Model
from anomalia.workflows import fit_file
from anomalia.workflows.augment import augment_normal, fit_augmented
from anomalia.workflows.diagnose import calibration_check, feature_warnings

from tabular_files import write


def _normal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(2, 5))
    return (rng.normal(size=(n, 2)) @ W + 0.1 * rng.normal(size=(n, 5)) + 3.0).astype(np.float32)


@pytest.fixture(scope="module")
def vae() -> an.VAE:
    return an.VAE(hidden=(16,), latent=2, epochs=40, random_state=0).fit(_normal(1000))


def test_vae_samples_look_like_the_normal_rows(vae: an.VAE) -> None:
    X = _normal(1000)
    S = vae.sample(2000, random_state=1)
    assert S.shape == (2000, 5) and S.dtype == np.float32
    np.testing.assert_array_equal(S, vae.sample(2000, random_state=1))  # same seed, same rows
    assert not np.array_equal(S, vae.sample(2000, random_state=2))
    np.testing.assert_allclose(S.mean(axis=0), X.mean(axis=0), atol=0.25 * X.std(axis=0).max())
    # the decoded codes keep the data's strong correlations (its rows lie near a 2-D plane); the decoder's
    # noise (its learned per-feature variance) only widens them
    means = vae.sample(2000, random_state=0, noise=False)
    assert np.abs(np.corrcoef(means.T) - np.corrcoef(X.T)).max() < 0.4
    assert means.std(axis=0).sum() < S.std(axis=0).sum()
    with pytest.raises(an.ParameterError, match="n must be a positive integer"):
        vae.sample(0)
    with pytest.raises(an.NotFittedError):
        an.VAE().sample(3)


def test_model_samples_are_records_of_the_input_columns(vae: an.VAE, tmp_path: Path) -> None:
    df = pd.DataFrame(_normal(400), columns=list("abcde")).assign(kind=np.where(np.arange(400) % 3, "x", "y"))
    params = ["epochs=5", "hidden=[8]", "latent=2"]
    m = Model.load(fit_file(write(df, tmp_path / "t.csv"), out=tmp_path / "m", model="vae", params=params).path)
    rows = m.sample(50, random_state=0)
    assert isinstance(rows, pa.Table) and rows.num_rows == 50
    assert rows.schema.names == m.input_columns and set(rows.column("kind").to_pylist()) <= {"x", "y"}
    assert m.score(rows).score.shape == (50,)  # they read back through the same encoder
    with pytest.raises(an.InputError, match="does not generate data"):
        Model(an.PCA().fit(_normal(100))).sample(5)
    assert Model(vae).sample(7, random_state=0).shape == (7, 5)  # no encoder: the detector's features


def test_augmentation_trains_on_samples_and_calibrates_on_real_rows_only() -> None:
    X = _normal(60)
    aug = augment_normal(X, factor=2, vae_params={"epochs": 5}, random_state=0)
    assert aug.shape == (180, 5) and np.array_equal(aug[:60], X)
    det = fit_augmented(an.PCA(n_components=2), X, factor=2, vae_params={"epochs": 5}, random_state=0)
    n_cal = round(0.2 * 60)
    assert det.calibrator_.scores.size == n_cal  # the real held-out rows, not the 20 % of the augmented set
    assert det.n_train_rows_ > 60 - n_cal  # trained on the real rows plus samples
    with pytest.raises(an.ParameterError, match="factor"):
        augment_normal(X, factor=0)


def test_calibration_size_against_alpha() -> None:
    c = calibration_check(1000, 0.001)
    assert (c.n_calibration, c.needed) == (200, 999)
    assert c.more_rows == 4995 - 1000 and c.smallest_alpha == pytest.approx(1 / 201)
    assert calibration_check(10_000, 0.01).more_rows == 0
    with pytest.raises(an.ParameterError, match="alpha"):
        calibration_check(100, 1.5)


def test_feature_warnings_find_constant_duplicate_and_id_columns() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    df = df.assign(row_id=np.arange(300), const=1.0, a_copy=2 * df["a"] + 1, name=[f"user{i}" for i in range(300)])
    kinds = {w.column: w.kind for w in feature_warnings(df)}
    assert kinds == {"row_id": "id-like", "const": "constant", "a_copy": "near-duplicate", "name": "id-like"}


def test_diagnose_learning_curve_and_recommendation() -> None:
    X = pd.DataFrame(_normal(600), columns=list("abcde")).assign(row=np.arange(600))
    d = an.diagnose(X, alpha=0.001, model="pca", params={"n_components": 2}, random_state=0)
    assert [p.n_train for p in d.curve] == sorted(p.n_train for p in d.curve) and len(d.curve) == 4
    assert all(0.5 < p.roc_auc <= 1.0 for p in d.curve)  # PCA separates the off-plane synthetic anomalies
    assert d.curve[0].stability is None and all(-1 <= p.stability <= 1 for p in d.curve[1:])
    assert d.calibration.needed == 999 and d.calibration.more_rows > 0
    assert "row" not in d.feature_names and [w.column for w in d.warnings] == ["row"]
    assert "--drop row" in d.recommendation and "999" in d.recommendation and "more normal rows" in d.recommendation
    with pytest.raises(an.InputError, match="collect more normal data"):
        an.diagnose(_normal(20), model="pca")
    with pytest.raises(an.ParameterError, match="table detector"):
        an.diagnose(_normal(200), model="cnn-forecaster")


def test_diagnose_command_and_its_report(tmp_path: Path, capsys) -> None:
    df = pd.DataFrame(_normal(400), columns=list("abcde")).assign(
        id=[f"r{i}" for i in range(400)], label=np.r_[np.zeros(390, int), np.ones(10, int)]
    )
    path = write(df, tmp_path / "d.csv")
    args = ["-m", "pca", "--label-column", "label", "--alpha", "0.001", "--report", str(tmp_path / "r.html")]
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", str(path), *args])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    assert "Learning curve" in out and "more rows needed" in out and "id-like" in out and "Recommendation" in out
    html = (tmp_path / "r.html").read_text()
    assert "Is the normal data enough?" in html and "learning-curve" in html and "calibration-size" in html
    missing = (["diagnose", str(tmp_path / "missing.csv")], "missing.csv")
    bad_runs = [missing, (["diagnose", str(path), "--alpha", "2"], "alpha")]
    for bad, needle in bad_runs:
        with pytest.raises(SystemExit) as exc:
            main(bad)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and needle in err and "Traceback" not in err


def test_readme_diagnose_examples_run_as_written(tmp_path: Path, monkeypatch, capsys) -> None:
    import re
    import shlex

    from sklearn.datasets import load_breast_cancer

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = text.index("## Is my normal data enough?")
    section = text[start : text.index("\n## ", start + 3)]
    data = load_breast_cancer(as_frame=True)
    df = data.data.rename(columns=lambda c: c.replace(" ", "_")).assign(label=(data.target == 0).astype(int))
    df.to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)
    (bash,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    cmd = shlex.split(bash.strip())
    with pytest.raises(SystemExit) as exc:
        main(cmd[1:])
    assert exc.value.code in (0, None) and (tmp_path / "diagnosis.html").is_file()
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    capsys.readouterr()
    exec(compile(code, "README.md (diagnose)", "exec"), {})
    out = capsys.readouterr().out
    assert "999" in out and "4,638" in out  # the numbers the README quotes
