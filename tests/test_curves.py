"""curves.png from a run's CSV log: what is read, what is drawn, and when nothing is."""

from __future__ import annotations

import logging
from pathlib import Path

from nerlit.evaluation.curves import plot_run_curves, read_curves, write_run_curves

CSV = """epoch,lr-AdamW/pg1,step,train/loss,val/f1,val/f1/geo,val/f1/per
0,0.0001,49,,,,
0,,49,0.9,,,
0,,99,0.5,,,
0,,99,,0.6,0.5,0.7
1,5e-05,149,,,,
1,,149,0.3,,,
1,,199,,0.8,0.75,0.85
"""


def test_each_column_becomes_its_points_in_step_order(tmp_path: Path):
    (tmp_path / "metrics.csv").write_text(CSV)
    curves = read_curves(tmp_path / "metrics.csv")
    assert curves["train/loss"] == [(49, 0.9), (99, 0.5), (149, 0.3)]
    assert curves["val/f1/geo"] == [(99, 0.5), (199, 0.75)]
    assert curves["lr-AdamW/pg1"] == [(49, 1e-4), (149, 5e-5)]
    assert "epoch" not in curves


def test_a_run_folder_gets_its_png_and_a_log_without_training_gets_none(tmp_path: Path, caplog):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text(CSV)
    png = write_run_curves(tmp_path)
    assert png == tmp_path / "curves.png" and png.read_bytes()[:4] == b"\x89PNG"
    tested_only = tmp_path / "tested.csv"
    tested_only.write_text("epoch,step,test/f1\n0,0,0.5\n")
    assert plot_run_curves(tested_only, tmp_path / "none.png") is None
    assert write_run_curves(tmp_path / "no-run") is None


def test_without_matplotlib_the_run_says_how_to_get_it(tmp_path: Path, monkeypatch, caplog):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text(CSV)
    monkeypatch.setattr("nerlit.extras.installed", lambda name: False)
    with caplog.at_level(logging.INFO, logger="nerlit"):
        assert write_run_curves(tmp_path) is None
    assert "nerlit[plots]" in caplog.text and not (tmp_path / "curves.png").exists()
