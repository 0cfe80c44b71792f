"""Notebook tests: each notebook is executed once per session with papermill at its quick
defaults (plus test isolation: its outputs, figures and runs go to a temporary folder)."""
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from vtbench.notebooks import list_notebooks, run_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = [p.stem for p in list_notebooks(NOTEBOOK_DIR)]


@dataclass
class Executed:
    notebook: Path  # the executed copy
    metrics: dict  # what its last cell recorded
    parameters: dict
    figures: Path
    seconds: float


@pytest.fixture(scope="session")
def execute(tmp_path_factory):
    """execute(stem) -> Executed, run once per session and parameter set."""
    done = {}

    def run(stem: str, **parameters) -> Executed:
        key = (stem, json.dumps(parameters, sort_keys=True))
        if key not in done:
            out = tmp_path_factory.mktemp(stem)
            params = {"runs_dir": str(out / "runs"), **parameters}
            source = NOTEBOOK_DIR / f"{stem}.ipynb"
            if '"runs_dir' not in source.read_text():
                params.pop("runs_dir")
            seconds = run_notebook(source, out, out / "figures", params)
            recorded = json.loads((out / f"{stem}.json").read_text())
            done[key] = Executed(out / source.name, recorded["metrics"], recorded["parameters"], out / "figures", seconds)
        return done[key]

    return run
