"""environment.yml's pip section mirrors pyproject.toml (core and dev dependencies)."""
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {Requirement(r).name: Requirement(r) for r in reqs}


def _environment_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {Requirement(r).name: Requirement(r) for r in pip if not r.startswith("-e")}


def test_environment_yml_lists_exactly_the_pyproject_dependencies():
    assert set(_environment_requirements()) == set(_pyproject_requirements())


def test_environment_yml_uses_the_same_version_specifiers():
    ours = _pyproject_requirements()
    for name, req in _environment_requirements().items():
        if name == "torch":  # pinned to the CPU wheel that the Makefile installs first
            assert str(req.specifier) == "==2.13.0" and ours[name].specifier.contains("2.13.0")
        else:
            assert req.specifier == ours[name].specifier, name


def test_makefile_installs_the_cpu_torch_first():
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.index("torch==2.13.0") < makefile.index("-e '.[dev]'")
