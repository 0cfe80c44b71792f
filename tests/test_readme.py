"""What the README says runs, runs: its Python blocks execute, its figures and commands exist."""
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_blocks_run():
    from vtbench.losses import LOSSES

    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    before = set(LOSSES)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:  # a loss the README registers stays out of the other tests
        for name in set(LOSSES) - before:
            del LOSSES[name]


def test_linked_files_exist():
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)\)", README):
        if not target.startswith("../"):
            assert (ROOT / target).exists(), target


def test_the_commands_it_names_exist():
    for command in ("train", "eval", "compare", "ablate"):
        out = subprocess.run([sys.executable, "-m", "vtbench", command, "--help"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, "-m", "vtbench.bench", "kernels", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    targets = re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.M)
    for target in re.findall(r"make ([a-z]+)", README):
        assert target in targets, target


def test_the_comparison_table_is_the_one_compare_wrote():
    written = (ROOT / "figures" / "comparison.md").read_text()
    headline = written[written.index("## Headline"):written.index("## Every metric")]
    rows = [line for line in headline.splitlines() if line.startswith("|")]
    assert rows and all(row in README for row in rows)


@pytest.mark.parametrize("table", ["bench_kernels_cpu.md", "bench_kernels_cuda.md"])
def test_the_kernel_table_is_the_one_the_bench_wrote(table):
    rows = [line for line in (ROOT / "figures" / table).read_text().splitlines() if line.startswith("|")]
    assert rows and all(row in README for row in rows)


def test_the_vtbench_names_the_docs_and_docstrings_give_exist():
    """Every dotted ``vtbench.x.y`` in README.md, docs/*.md and vtbench/**/*.py imports or resolves."""
    sources = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "vtbench").rglob("*.py")]
    missing = []
    for path in sources:
        for name in set(re.findall(r"\bvtbench(?:\.\w+)+", path.read_text())):
            parts, obj = name.split("."), None
            for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                except ImportError:
                    continue
                for part in parts[i:]:
                    obj = getattr(obj, part, None)
                break
            if obj is None:
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing
