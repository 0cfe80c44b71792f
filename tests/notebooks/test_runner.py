"""The runner and the helpers of the notebooks' first and last cells."""
import argparse
import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from vtbench import notebooks
from vtbench.notebooks import NotebookFailed, ParameterError, check_parameters, record, run_notebook

from .conftest import NOTEBOOK_DIR, NOTEBOOKS


def test_check_parameters_accepts_good_values():
    namespace = {"epochs": 3, "lr": 1, "name": "x", "run": None, "kernel": "dtw", "seeds": [0, 1], "full": False}
    checked = check_parameters(namespace, epochs=int, lr=float, name=str, run=str | None,
                               kernel={"dtw", "s2dtw"}, seeds=list[int], full=bool)
    assert checked == namespace


@pytest.mark.parametrize("value, expected, message", [
    ("3", int, "epochs = '3': expected int, got str"),
    (True, int, "expected int, got bool"),
    (2.5, int, "expected int, got float"),
    ("hot", float, "expected float, got str"),
    (float("nan"), float, "expected float"),
    ("nope", {"dtw", "s2dtw"}, "expected one of 'dtw', 's2dtw'"),
    ([0, "1"], list[int], "expected list[int]"),
    (3, str | None, "expected str | None, got int"),
])
def test_check_parameters_names_the_wrong_one(value, expected, message):
    with pytest.raises(ParameterError, match="bad notebook parameters") as error:
        check_parameters({"epochs": value}, epochs=expected)
    assert message in str(error.value)


def test_check_parameters_reports_every_problem_and_missing_ones():
    with pytest.raises(ParameterError) as error:
        check_parameters({"a": "x"}, a=int, b=float)
    assert "a = 'x'" in str(error.value) and "b: missing" in str(error.value)


def test_record_writes_json(tmp_path):
    import torch

    path = record(tmp_path / "out", "99_demo", {"acc": torch.tensor(0.5), "nan": float("nan"), "t": (1, 2)},
                  parameters={"seed": 1})
    assert json.loads(path.read_text()) == {"notebook": "99_demo", "parameters": {"seed": 1},
                                            "metrics": {"acc": 0.5, "nan": None, "t": [1, 2]}}


def test_every_notebook_starts_with_parameters_and_has_no_outputs():
    assert NOTEBOOKS[:1] == ["01_dtw_vs_weak_dtw"] and "07_alignment_explorer" in NOTEBOOKS
    for stem in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOK_DIR / f"{stem}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), stem
        assert "check_parameters(globals()" in code[1].source, stem
        assert "record(results_dir" in code[-1].source, stem
        assert all(not c.outputs and c.execution_count is None for c in code), f"{stem} has outputs"
        assert nb.metadata.kernelspec.name == "python3"
        assert {"figures_dir", "results_dir"} <= set(_assigned(code[0].source)), stem


def _assigned(source):
    return [line.split("=")[0].strip() for line in source.splitlines() if "=" in line and not line.startswith("#")]


def _write(path, *sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_failing_cell_is_named(tmp_path):
    source = _write(tmp_path / "42_broken.ipynb", "figures_dir = 'f'\nresults_dir = 'out'", "x = 1",
                    "# divide\n1 / 0", "print('never')")
    with pytest.raises(NotebookFailed) as failure:
        run_notebook(source, tmp_path / "out", tmp_path / "figures")
    message = str(failure.value)
    assert "42_broken.ipynb failed in code cell 3 of 4" in message  # the source's numbering, without the injected cell
    assert "cell: # divide" in message and "ZeroDivisionError" in message
    assert f"full traceback in {tmp_path / 'out' / '42_broken.failed.ipynb'}" in message


@pytest.mark.slow
def test_a_failed_run_keeps_the_last_good_copy_and_its_metrics(tmp_path):
    source = _write(tmp_path / "43_flaky.ipynb", "figures_dir = 'f'\nresults_dir = 'out'\nfail = False",
                    "assert not fail, 'asked to fail'",
                    "from vtbench.notebooks import record\nrecord(results_dir, '43_flaky', {'value': 1})")
    out = tmp_path / "out"
    run_notebook(source, out, tmp_path / "figures")
    good = (out / "43_flaky.ipynb").read_bytes()
    with pytest.raises(NotebookFailed, match="43_flaky.failed.ipynb"):
        run_notebook(source, out, tmp_path / "figures", {"fail": True})
    assert (out / "43_flaky.ipynb").read_bytes() == good and (out / "43_flaky.failed.ipynb").exists()
    assert json.loads((out / "43_flaky.json").read_text())["metrics"] == {"value": 1}
    assert sorted(p.name for p in out.iterdir()) == ["43_flaky.failed.ipynb", "43_flaky.ipynb", "43_flaky.json"]
    run_notebook(source, out, tmp_path / "figures")
    assert not (out / "43_flaky.failed.ipynb").exists()  # it described an earlier run


@pytest.mark.slow
@pytest.mark.parametrize("cell, timeout, match", [
    ("import time\ntime.sleep(60)", 3, r"44_stuck.ipynb ran past --timeout 3 s in code cell 2 of 2 \(import time"),
    ("import os\nos._exit(1)", None, r"44_stuck.ipynb lost its kernel in code cell 2 of 2 \(import os"),
])
def test_a_cell_timeout_or_a_dead_kernel_names_the_notebook_and_cell(tmp_path, cell, timeout, match):
    source = _write(tmp_path / "44_stuck.ipynb", "figures_dir = 'f'\nresults_dir = 'out'", cell)
    with pytest.raises(NotebookFailed, match=match) as failure:
        run_notebook(source, tmp_path / "out", tmp_path / "figures", timeout=timeout)
    assert str(tmp_path / "out" / "44_stuck.failed.ipynb") in str(failure.value)


@pytest.mark.slow
def test_a_wrong_parameter_type_fails_in_the_first_cell_with_a_clear_error(tmp_path):
    with pytest.raises(NotebookFailed) as failure:
        run_notebook(NOTEBOOK_DIR / "01_dtw_vs_weak_dtw.ipynb", tmp_path, tmp_path / "figures", {"gamma": "hot"})
    message = str(failure.value)
    assert "failed in code cell 2 of" in message and "ParameterError" in message
    assert "gamma = 'hot': expected float, got str" in message


@pytest.mark.slow
def test_main_exits_non_zero_naming_the_notebook(tmp_path, monkeypatch, capsys):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    _write(root / "notebooks" / "01_fine.ipynb", "figures_dir = 'f'\nresults_dir = 'out'", "open(f'{figures_dir}/a.png', 'w')")
    _write(root / "notebooks" / "02_broken.ipynb", "figures_dir = 'f'\nresults_dir = 'out'", "raise ValueError('boom')")
    _write(root / "notebooks" / "03_never.ipynb", "figures_dir = 'f'\nresults_dir = 'out'", "raise SystemExit")
    (root / "figures").mkdir()
    (root / "figures" / "older.png").write_bytes(b"")  # not written by this run: not listed
    os.utime(root / "figures" / "older.png", (0, 0))
    monkeypatch.chdir(root)
    assert notebooks.main(["--only", "01"]) == 0
    out = capsys.readouterr().out
    assert f"outputs -> {root / 'notebooks' / 'out'}" in out and "figures written (1)" in out and "a.png" in out
    assert "older.png" not in out
    assert json.loads((root / "notebooks" / "out" / "runtimes.json").read_text())["mode"] == "quick"
    assert notebooks.main(["-p", "seed=3"]) == 1
    runtimes = json.loads((root / "notebooks" / "out" / "runtimes.json").read_text())
    assert runtimes["failed"] == "02_broken" and list(runtimes["seconds"]) == ["01_fine"]
    captured = capsys.readouterr()
    assert "02_broken.ipynb: FAILED" in captured.out and "03_never" not in captured.out
    assert "02_broken.ipynb failed in code cell 2 of 2" in captured.err and "ValueError: boom" in captured.err


def test_unknown_only_prefix_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(NOTEBOOK_DIR.parent)
    with pytest.raises(SystemExit, match="no notebook matches"):
        notebooks.main(["--only", "99"])


def test_full_parameters_name_real_notebooks_and_parameters():
    for stem, overrides in notebooks.FULL_PARAMETERS.items():
        assert stem in NOTEBOOKS, stem
        first = nbformat.read(NOTEBOOK_DIR / f"{stem}.ipynb", as_version=4).cells
        params = next(c for c in first if c.cell_type == "code").source
        assert set(overrides) <= set(_assigned(params)), (stem, overrides)


def test_override_parsing():
    assert notebooks._parse_override("seed=3") == ("seed", 3)
    assert notebooks._parse_override("kernel=dtw") == ("kernel", "dtw")
    assert notebooks._parse_override("runs=['a']") == ("runs", ["a"])
    with pytest.raises(argparse.ArgumentTypeError, match="must be a Python identifier, got 'my-flag'"):
        notebooks._parse_override("my-flag=3")


def test_runs_folders_follow_the_settings_and_the_code(tmp_path, monkeypatch):
    folder = notebooks.runs_folder(tmp_path, "notebook-x", preset="quick", seed=0)
    assert folder == notebooks.runs_folder(tmp_path, "notebook-x", seed=0, preset="quick")
    assert folder.parent == tmp_path and folder.name.startswith("notebook-x-")
    assert folder != notebooks.runs_folder(tmp_path, "notebook-x", preset="quick", seed=1)
    monkeypatch.setattr(notebooks, "code_version", lambda: "other code")
    assert folder != notebooks.runs_folder(tmp_path, "notebook-x", preset="quick", seed=0)


def test_an_interrupted_run_leaves_its_copy_as_failed_and_the_last_good_one(tmp_path, monkeypatch):
    import papermill

    out = tmp_path / "out"
    out.mkdir()
    (out / "45_long.ipynb").write_text("the last good copy")

    def interrupted(source, running, **kwargs):  # Ctrl-C while a cell runs: papermill has written its copy
        open(running, "w").write("half-run")
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_notebook(_write(tmp_path / "45_long.ipynb", "figures_dir = 'f'\nresults_dir = 'out'"), out, tmp_path / "f")
    assert sorted(p.name for p in out.iterdir()) == ["45_long.failed.ipynb", "45_long.ipynb"]
    assert (out / "45_long.ipynb").read_text() == "the last good copy"
