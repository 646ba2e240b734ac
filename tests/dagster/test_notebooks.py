"""Every module a notebook imports is provided: by the standard library, by wfmon's own
packages, by wfmon's locked dependencies, or by the ``notebooks`` dependency group of
``pyproject.toml`` (installed by ``make notebooks``, never by ``make test``). No services."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LOCAL_PACKAGES = {"wfmon", "wfmon_defs", "assets", "resources"}
#: Modules whose distribution is named differently (none of the notebooks' so far).
MODULE_TO_DISTRIBUTION: dict[str, str] = {}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def notebook_imports(path: Path) -> set[str]:
    """Top-level module names imported by the notebook's code cells."""
    modules: set[str] = set()
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return modules


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_are_covered(path: Path) -> None:
    project = _pyproject()
    groups: dict[str, list[str]] = project["dependency-groups"]  # type: ignore[assignment]
    notebook_group = {_name(r) for r in groups["notebooks"]}
    # The group pins exact versions, like the rest of pyproject.toml.
    assert all("==" in r for r in groups["notebooks"]), groups["notebooks"]
    assert {"jupyterlab", "ipykernel"} <= notebook_group, "a kernel and a UI to open them"
    installed = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(notebook_imports(path)):
        if module in sys.stdlib_module_names or module in LOCAL_PACKAGES:
            continue
        if _name(MODULE_TO_DISTRIBUTION.get(module, module)) in notebook_group:
            continue
        if module in installed:  # a locked dependency of wfmon (the test venv has them)
            continue
        missing.append(module)
    assert not missing, f"{path.name} imports {missing}: add them to the notebooks group"


def test_make_test_does_not_install_the_notebooks_group() -> None:
    """``make test`` (and so CI) syncs the default groups only; ``make notebooks`` adds the
    notebooks group."""
    project = _pyproject()
    uv = project.get("tool", {}).get("uv", {})  # type: ignore[attr-defined]
    assert "notebooks" not in uv.get("default-groups", ["dev"])
    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r"^\$\(BIN\)/wfmon:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert install and "--group notebooks" not in install.group(1)
    assert "--all-groups" not in install.group(1)
    notebooks = re.search(r"^notebooks:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert notebooks and "--group notebooks" in notebooks.group(1)
