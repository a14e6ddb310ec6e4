"""`anomalia demo`: the README's first command, end to end on data that ships with scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from anomalia.workflows import run_demo


def test_demo_workflow_flags_at_the_asked_false_alarm_rate() -> None:
    result = run_demo(alpha=0.05, detectors=("autoencoder", "vae"))
    assert result.n_test_anomalies == 212 and result.n_train + result.n_test_normal == 357
    for name, row in result.rows.items():
        assert row["roc_auc"] > 0.9, name
        assert row["false_alarm_rate"] < 0.12, name  # 143 held-out benign rows: 0.05 plus sampling noise
        assert row["recall"] > 0.5, name


def test_demo_command_prints_the_table_and_writes_the_report(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("anomalia")
    out = subprocess.run([str(exe), "demo"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    for word in ("ROC-AUC", "PR-AUC", "FAR", "autoencoder", "vae", "isolation-forest", "pca"):
        assert word in out.stdout
    assert (tmp_path / "demo-report.html").stat().st_size > 10_000
