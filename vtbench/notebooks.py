"""Run the numbered notebooks with papermill, and the helpers their first and last cells use.

    python -m vtbench.notebooks                 # every notebook, quick parameters
    python -m vtbench.notebooks --full          # longer settings (behind the README's notebook-06 figures)
    python -m vtbench.notebooks --only 01 07    # some of them
    python -m vtbench.notebooks -p seed=3       # override a parameter in every notebook run

Sources in notebooks/ stay clean: executed copies go to notebooks/out/ (with each notebook's
metrics as JSON beside it), figures to figures/. A failing cell (or a cell past --timeout, or a
dead kernel) stops the run with the notebook and the cell named and a non-zero exit status; its
executed part is left as out/NN.failed.ipynb, beside the last good out/NN.ipynb, untouched.

In a notebook, the cell after ``parameters`` validates them and the last cell records metrics::

    params = check_parameters(globals(), epochs=int, gamma=float, kernel={"dtw", "s2dtw"}, run=str | None)
    record(results_dir, "03_vt_twins", {"recall": 0.81}, parameters=params)
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import os
import sys
import time
import types
import typing
from collections.abc import Mapping
from pathlib import Path

from .io import atomic_write

# The longer settings (the README's comparison and noise-ablation figures come from notebook 06's);
# the parameters cells hold the quick defaults.
FULL_PARAMETERS: dict[str, dict] = {
    "02_narrated_digits": {"max_videos": 480, "noise_levels": [0.0, 0.5, 1.0, 1.5, 2.0]},
    "03_vt_twins": {"preset": "full", "test_videos": 4},
    "04_tempclr": {"preset": "full", "test_videos": 4},
    "05_cali_nce": {"preset": "full", "test_videos": 4},
    "06_comparison": {"seeds": 3, "overrides": {}, "noise_levels": [0.0, 1.0, 2.0], "ablation_seeds": 1,
                      "ablation_overrides": {}},
    "07_alignment_explorer": {"train_if_missing": True},
}


class ParameterError(TypeError):
    """A notebook parameter has the wrong type or value."""


class NotebookFailed(RuntimeError):
    """A notebook cell raised: names the notebook and the cell."""


# ---------------------------------------------------------------------------------------------
# helpers for the notebooks' first and last cells

def _describe(expected) -> str:
    if isinstance(expected, (set, frozenset)):
        return "one of " + ", ".join(repr(v) for v in sorted(expected, key=repr))
    if isinstance(expected, type):
        return expected.__name__
    return str(expected).replace("typing.", "").replace("NoneType", "None")


def _matches(value, expected) -> bool:
    if isinstance(expected, (set, frozenset)):
        return value in expected
    if expected is None:
        return value is None
    if isinstance(expected, types.UnionType) or typing.get_origin(expected) is typing.Union:
        return any(_matches(value, option) for option in typing.get_args(expected))
    origin = typing.get_origin(expected)
    if origin in (list, tuple):
        (item,) = typing.get_args(expected)[:1] or (object,)
        return isinstance(value, (list, tuple)) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if expected is float:  # an int is a fine float; a bool is neither
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def check_parameters(namespace: Mapping, **spec) -> dict:
    """Check the notebook's parameters against ``spec`` (name=type, a union such as
    ``str | None``, ``list[int]``, or a set of allowed values); raise :class:`ParameterError`
    naming every parameter that is wrong, what it should be and what it is. Returns
    {name: value} of the checked parameters (what :func:`record` saves with the metrics)."""
    problems = []
    for name, expected in spec.items():
        if name not in namespace:
            problems.append(f"  {name}: missing (the parameters cell must define it)")
            continue
        value = namespace[name]
        if not _matches(value, expected):
            problems.append(f"  {name} = {value!r}: expected {_describe(expected)}, got {type(value).__name__}")
    if problems:
        raise ParameterError("bad notebook parameters (set them in the parameters cell, or with "
                             "`python -m vtbench.notebooks -p name=value`):\n" + "\n".join(problems))
    return {name: namespace[name] for name in spec}


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _jsonable(value.item())
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return str(value)


def record(results_dir: str | Path, notebook: str, metrics: Mapping, *, parameters: Mapping | None = None) -> Path:
    """Write ``{results_dir}/{notebook}.json``: {"notebook", "parameters", "metrics"}, atomically
    (``parameters``: what :func:`check_parameters` returned)."""
    text = json.dumps({"notebook": notebook, "parameters": _jsonable(dict(parameters or {})),
                       "metrics": _jsonable(metrics)}, indent=2, sort_keys=True)
    return atomic_write(Path(results_dir) / f"{notebook}.json", lambda f: f.write(text.encode()))


# ---------------------------------------------------------------------------------------------
# models for the explorer and the learned-alignment figures

def find_runs(runs_dir: str | Path) -> list[Path]:
    """Run folders under ``runs_dir`` that hold a checkpoint: top-level runs first (a notebook's or
    ``vtbench train``'s), then those nested in comparisons and ablations; newest first within each."""
    runs_dir = Path(runs_dir)
    found = [p.parent for p in runs_dir.glob("**/checkpoint.pt")] if runs_dir.is_dir() else []
    return sorted(found, key=lambda p: (len(p.relative_to(runs_dir).parts), -p.stat().st_mtime))


def code_version() -> str:
    """A hash of vtbench's own source (its .py and C++ files): what trained a run."""
    import hashlib

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.suffix in {".py", ".cpp"}):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def runs_folder(runs_dir: str | Path, name: str, **settings) -> Path:
    """``runs_dir/name-<hash of settings and code_version()>``: runs made with other settings, or
    by other code, land elsewhere, so a notebook never republishes a run that older code trained
    (a comparison also refuses to reuse a folder trained with another config)."""
    import hashlib

    key = json.dumps({"settings": _jsonable(settings), "code": code_version()}, sort_keys=True)
    return Path(runs_dir) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def explorer_models(train_split, *, runs: typing.Sequence[str] = (), runs_dir: str | Path = "../runs",
                    train_if_missing: bool = False, train_overrides: Mapping | None = None,
                    untrained: bool = True, seed: int = 0, max_runs: int = 8) -> dict:
    """{name: Embedder} for the explorer: the runs named (or the ``max_runs`` newest runs under
    ``runs_dir``, named by their path below it), a quick VT-TWINS run trained now when there is
    none and ``train_if_missing``, and an untrained model to compare against: what the first run's
    training started from (its architecture, tokenizer and seeded initialisation), or with no run
    a default model with random weights."""
    from vtbench.viz.sources import Embedder, untrained_embedder

    paths = [Path(r) for r in runs] or find_runs(runs_dir)[:max_runs]
    if not paths and train_if_missing:
        from vtbench.train import make_config, train

        config = make_config("vt-twins", "quick", dict(train_overrides or {}), seed=seed, progress=False,
                             out=str(Path(runs_dir) / "explorer-vt-twins"))
        paths = [train(config)]
    models, first = {}, None
    if paths:
        from vtbench.train import load_run

        for path in paths:
            name = path.relative_to(runs_dir).as_posix() if path.is_relative_to(runs_dir) else path.name
            run = load_run(path)
            models[name] = Embedder.from_run(run)
            first = first or run
    if first is not None and untrained:
        from vtbench.experiments.evaluate import untrained_run

        models["untrained"] = Embedder.from_run(untrained_run(first.config))
    elif untrained or not models:
        models["untrained"] = untrained_embedder(train_split, seed=seed)
    return models


# ---------------------------------------------------------------------------------------------
# the runner

def find_root(start: Path | None = None) -> Path:
    """The repository root: the first folder upwards holding notebooks/ and pyproject.toml."""
    for folder in [start or Path.cwd(), *(start or Path.cwd()).resolve().parents, Path(__file__).resolve().parents[1]]:
        if (folder / "notebooks").is_dir() and (folder / "pyproject.toml").is_file():
            return folder.resolve()
    raise FileNotFoundError("no notebooks/ folder found: run from the vtbench repository")


def list_notebooks(folder: Path, only: typing.Sequence[str] = ()) -> list[Path]:
    """The numbered notebooks in order; ``only`` keeps those whose name starts with a prefix."""
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = [o for o in only if not any(p.name.startswith(o) for p in found)]
        if unknown:
            raise SystemExit(f"no notebook matches {unknown}; have {[p.stem for p in found]}")
        found = [p for p in found if any(p.name.startswith(o) for o in only)]
    return found


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return (lines[0][:100] + (" ..." if len(lines) > 1 else "")) if lines else "(empty)"


def _source_code_cells(output: Path) -> list:
    """The executed copy's code cells that the source has (papermill's injected-parameters cell left out)."""
    import nbformat

    cells = nbformat.read(output, as_version=4).cells
    return [c for c in cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


def describe_failure(error, notebook: Path, output: Path) -> str:
    """Name the notebook and the failing cell from a papermill.PapermillExecutionError: its
    number among the source's code cells (papermill's injected-parameters cell not counted), its
    first line, the error, and where the executed copy with the full traceback is."""
    where = f"cell {error.cell_index + 1}"
    try:
        code = _source_code_cells(output)  # (papermill adds an error banner cell: not a code cell)
        number = next(k for k, c in enumerate(code, 1) if c.execution_count == error.exec_count)
        where = f"code cell {number} of {len(code)}"
    except Exception:  # the output may be half written; papermill's index is still useful
        pass
    evalue = str(error.evalue).strip().splitlines()
    return (f"{notebook.name} failed in {where} (In [{error.exec_count}]):\n"
            f"  cell: {_first_line(error.source)}\n"
            f"  {error.ename}: {evalue[0] if evalue else ''}"
            + "".join(f"\n  {line}" for line in evalue[1:8])
            + f"\n  full traceback in {output}")


def describe_interruption(error, notebook: Path, output: Path, timeout: int | None) -> str:
    """Name the notebook, and the cell papermill was running (the last it started), when the kernel
    timed out or died (nbclient's CellTimeoutError, DeadKernelError): no error record names it then."""
    where = "a cell"
    try:
        code = _source_code_cells(output)
        number, cell = [(k, c) for k, c in enumerate(code, 1)
                        if c.metadata.get("papermill", {}).get("status", "pending") != "pending"][-1]
        where = f"code cell {number} of {len(code)} ({_first_line(cell.source)})"
    except Exception:  # the output may be half written
        pass
    what = f"ran past --timeout {timeout} s" if type(error).__name__ == "CellTimeoutError" else "lost its kernel"
    detail = str(error).strip().splitlines()
    return (f"{notebook.name} {what} in {where}:\n  {type(error).__name__}: {detail[0] if detail else ''}"
            f"\n  the executed part in {output}")


def run_notebook(notebook: Path, out_dir: Path, figures_dir: Path, parameters: Mapping | None = None,
                 timeout: int | None = None) -> float:
    """Execute one notebook with papermill into ``out_dir``; return its runtime in seconds;
    raise :class:`NotebookFailed` naming the failing cell.

    The executed copy is written beside its place and renamed there when the notebook succeeds: a
    failed or killed run leaves the last good copy (and its metrics) as it was, and its own copy
    as ``<name>.failed.ipynb``."""
    import papermill
    from nbclient.exceptions import CellControlSignal, DeadKernelError

    out_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    running = out_dir / f"{notebook.stem}.running.ipynb"
    failed = out_dir / f"{notebook.stem}.failed.ipynb"
    params = {"figures_dir": str(figures_dir), "results_dir": str(out_dir), **(parameters or {})}
    # the kernel is this interpreter: its own kernelspec comes first, and "python" in a kernelspec
    # is replaced by sys.executable by jupyter_client
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(Path(sys.prefix) / "share" / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(running), parameters=params, cwd=str(notebook.parent),
                                   kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                                   # the kernel process's own log (e.g. "running over TCP" on
                                   # localhost); the notebook's warnings still reach its outputs
                                   extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except papermill.PapermillExecutionError as error:
        os.replace(running, failed)
        raise NotebookFailed(describe_failure(error, notebook, failed)) from None
    except (CellControlSignal, DeadKernelError) as error:  # a cell timeout (CellTimeoutError), a dead kernel
        if running.exists():
            os.replace(running, failed)
        raise NotebookFailed(describe_interruption(error, notebook, failed, timeout)) from None
    except BaseException:  # Ctrl-C, anything else: what ran so far is the failed copy, as the docstring says
        if running.exists():
            os.replace(running, failed)
        raise
    os.replace(running, output)
    failed.unlink(missing_ok=True)  # an earlier failure's copy no longer describes this notebook
    return time.perf_counter() - start


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    name, raw = text.split("=", 1)
    if not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"a parameter name must be a Python identifier, got {name.strip()!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word is a string
    return name.strip(), value


def _write_runtimes(out_dir: Path, mode: str, seconds: dict, failed: str | None = None) -> None:
    """out_dir/runtimes.json: this run's seconds per notebook (and the one that failed, if any)."""
    text = json.dumps({"mode": mode, "seconds": seconds, "failed": failed}, indent=2)
    atomic_write(out_dir / "runtimes.json", lambda f: f.write(text.encode()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vtbench.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="longer settings (behind the README's notebook-06 figures)")
    parser.add_argument("--only", nargs="+", default=(), metavar="PREFIX", help="run only these (e.g. 01 07)")
    parser.add_argument("-p", "--param", action="append", type=_parse_override, default=[], metavar="NAME=VALUE",
                        help="override a parameter in every notebook run")
    parser.add_argument("--out", type=Path, help="executed notebooks and metrics (default notebooks/out)")
    parser.add_argument("--figures", type=Path, help="figures folder (default figures/)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    args = parser.parse_args(argv)

    root = find_root()
    out_dir = (args.out or root / "notebooks" / "out").resolve()
    figures_dir = (args.figures or root / "figures").resolve()
    notebooks = list_notebooks(root / "notebooks", args.only)
    mode = "full" if args.full else "quick"
    print(f"vtbench notebooks ({mode}): {len(notebooks)} to run; outputs -> {out_dir}, figures -> {figures_dir}")
    runtimes = {}
    began = time.time()
    for notebook in notebooks:
        params = {**(FULL_PARAMETERS.get(notebook.stem, {}) if args.full else {}), **dict(args.param)}
        try:
            runtimes[notebook.stem] = run_notebook(notebook, out_dir, figures_dir, params, args.timeout)
        except NotebookFailed as failure:
            print(f"  {notebook.name}: FAILED", flush=True)
            print(f"\nvtbench notebooks: {failure}", file=sys.stderr)
            _write_runtimes(out_dir, mode, runtimes, failed=notebook.stem)
            return 1
        print(f"  {notebook.name}: {runtimes[notebook.stem]:.0f} s", flush=True)
    _write_runtimes(out_dir, mode, runtimes)
    # the figures these notebooks wrote (the folder also holds others: the benchmark's, the browser test's)
    figures = sorted(p.name for p in figures_dir.iterdir() if p.suffix in {".png", ".html"}
                     and p.stat().st_mtime >= began - 1)
    print(f"done in {sum(runtimes.values()):.0f} s.\n  executed notebooks and metrics (*.json): {out_dir}\n"
          f"  figures written ({len(figures)}): {figures_dir}" + "".join(f"\n    {name}" for name in figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
