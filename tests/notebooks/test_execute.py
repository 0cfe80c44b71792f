"""Every notebook executes with papermill at its quick defaults and records sensible metrics."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import NOTEBOOKS

pytestmark = pytest.mark.slow
SANITIZER = Path(__file__).with_name("nbval_sanitize.cfg")


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_runs_at_quick_defaults(execute, stem):
    run = execute(stem)
    assert run.notebook.exists() and run.metrics  # (its time: `make notebooks` prints each one's)


def test_01_table_shows_where_dtw_fails(execute):
    precision = execute("01_dtw_vs_weak_dtw").metrics["path_precision"]
    assert precision["aligned"]["dtw"] == 1.0
    for case in ("irrelevant clips", "unnarrated step", "swapped steps"):
        assert precision[case]["dtw"] < 0.85, case
    assert precision["irrelevant clips"]["drop_dtw"] == 1.0
    figures = execute("01_dtw_vs_weak_dtw").figures
    assert {"dtw_vs_s2dtw.png", "weak_alignment_cases.png"} <= {p.name for p in figures.iterdir()}


def test_01_table_equals_its_snapshot(execute):
    """The seeded pairs give exact numbers: a kernel change that moves any of them fails here
    (tests/notebooks/01_table.json; update it only for a change that should move them)."""
    metrics = execute("01_dtw_vs_weak_dtw").metrics
    snapshot = json.loads(Path(__file__).with_name("01_table.json").read_text())
    for table, rows in snapshot.items():
        for case, row in rows.items():
            assert metrics[table][case] == pytest.approx(row, abs=1e-9), (table, case)


def test_01_dtw_table_passes_nbval(execute):
    """pytest --nbval-lax re-runs the executed notebook and compares the cells tagged
    nbval-check-output (the DTW table) with what papermill recorded."""
    run = execute("01_dtw_vs_weak_dtw")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "--nbval-sanitize-with", str(SANITIZER), str(run.notebook)],
        cwd=run.notebook.parent, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_nbval_catches_a_changed_table(execute, tmp_path):
    """The same check fails when the recorded table differs from what the code now prints."""
    import nbformat

    run = execute("01_dtw_vs_weak_dtw")
    nb = nbformat.read(run.notebook, as_version=4)
    (cell,) = [c for c in nb.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    cell.outputs[0]["text"] = cell.outputs[0]["text"].replace("1.00", "0.99", 1)
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "--nbval-sanitize-with", str(SANITIZER), str(changed)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "0.99" in result.stdout


def test_07_explorer_responds_to_gamma(execute):
    metrics = execute("07_alignment_explorer").metrics
    assert metrics["gamma_changes_alignment"] is True
    assert "untrained" in metrics["models"] and metrics["videos"] >= 1
    figures = execute("07_alignment_explorer").figures
    assert {"explorer.html", "plotly.min.js"} <= {p.name for p in figures.iterdir()}


def test_02_measures_the_narration_noise(execute):
    metrics = execute("02_narrated_digits").metrics
    clean, noisy = metrics["stats"]["clean"], metrics["stats"]["noise 1"]
    assert clean["filler_share"] == 0 and clean["unnarrated_share"] == 0 and clean["overlap_share"] == 1
    assert noisy["filler_share"] > 0.2 and noisy["unnarrated_share"] > 0.1
    levels = metrics["by_noise_level"]
    assert levels["0.0"]["filler_share"] < levels["2.0"]["filler_share"]


@pytest.mark.parametrize("stem", ["03_vt_twins", "04_tempclr", "05_cali_nce"])
def test_training_notebooks_learn(execute, stem):
    metrics = execute(stem).metrics
    assert metrics["final_loss"] < metrics["first_loss"]
    trained, floor = metrics["eval"], metrics["untrained"]
    assert trained["step_localisation/recall"] > floor["step_localisation/recall"] + 0.2
    assert metrics["path_precision"]["trained"] > metrics["path_precision"]["untrained"]
    names = {p.name for p in execute(stem).figures.iterdir()}
    method = stem[3:]
    assert {f"{method}_learning_curve.png", f"{method}_alignments.png"} <= names


def test_06_compares_every_method_and_the_noise_levels(execute):
    metrics = execute("06_comparison").metrics
    summary = metrics["summary"]
    assert {"untrained", "infonce", "milnce", "vt-twins", "tempclr", "cali-nce"} <= set(summary)
    assert summary["infonce"]["step_localisation/recall"]["n"] == 2
    assert {(r["noise"], r["method"]) for r in metrics["ablation"]} >= {(0.0, "vt-twins"), (1.0, "tempclr")}
    assert {"comparison.png", "noise_ablation.png"} <= {p.name for p in execute("06_comparison").figures.iterdir()}
