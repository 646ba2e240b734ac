"""Every module a notebook imports is provided: by the standard library, by wfmon's own
packages, by wfmon's locked dependencies, or by the ``notebooks`` dependency group of
``pyproject.toml`` (installed by ``make notebooks``, never by ``make test``). Notebooks are
committed with their outputs (a reader sees the tables and plots without running them),
and those outputs hold no secrets and no paths of the machine that ran them. No services."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
LOCAL_PACKAGES = {"wfmon", "wfmon_defs", "assets", "resources"}
#: Modules whose distribution is named differently (none of the notebooks' so far).
MODULE_TO_DISTRIBUTION: dict[str, str] = {}
#: A committed notebook, outputs and images included, stays reviewable.
MAX_NOTEBOOK_BYTES = 300 * 1024
#: What must never be saved in an output: credentials in URLs (a masked ``***`` is fine),
#: JWTs and sign-in tokens, key material, and absolute paths of the machine that ran it.
SECRET_PATTERNS = {
    "a URL with a password": re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@\"']+:(?!\*\*\*@)[^\s@\"']+@"),
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "a token parameter": re.compile(r"token=[A-Za-z0-9._-]{8,}"),
    "a secret setting": re.compile(r"WFMON_(SECRET_KEY|JWT_SECRET|DATABASE_URL)|PGPASSWORD"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "an absolute host path": re.compile(r"(?<![\w.])/(tmp|root|home|work|Users|var|opt)/"),
}


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


def _cells(path: Path, kind: str) -> list[dict[str, Any]]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def _output_texts(output: dict[str, Any]) -> list[str]:
    """Every text an output holds (images are base64 PNG: nothing to leak there)."""

    def text(value: str | list[str]) -> str:
        return value if isinstance(value, str) else "".join(value)

    texts = []
    if "text" in output:
        texts.append(text(output["text"]))
    for mime, value in output.get("data", {}).items():
        if not mime.startswith("image/"):
            texts.append(text(value) if isinstance(value, str | list) else json.dumps(value))
    if output["output_type"] == "error":
        texts += [output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])]
    return texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_with_its_outputs(path: Path) -> None:
    """Run top to bottom once (``jupyter nbconvert --execute``): every code cell has its
    outputs, none is an error, and the plots are saved as images."""
    code = _cells(path, "code")
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), (
        f"{path.name}: run every cell once, in order, before committing"
    )
    for i, cell in enumerate(code):
        assert cell["outputs"], f"{path.name}: code cell {i} has no saved output"
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        assert not errors, f"{path.name}: code cell {i} failed: {errors[0].get('evalue')}"
    plots = [c for c in code if "plt." in "".join(c["source"])]
    for cell in plots:
        assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), (
            f"{path.name}: a plotting cell saved no image"
        )
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size} B"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_outputs_hold_no_secrets(path: Path) -> None:
    found = []
    for i, cell in enumerate(_cells(path, "code")):
        for output in cell["outputs"]:
            for text in _output_texts(output):
                found += [(i, what) for what, rx in SECRET_PATTERNS.items() if rx.search(text)]
    assert not found, f"{path.name}: outputs hold {found} (cell index, what)"


def test_secret_patterns_catch_what_they_should() -> None:
    """The checks above would see a leak, and let masked or harmless text through."""
    leaks = [
        "postgresql://wfmon:s3cret@127.0.0.1:5432/wfmon",
        "postgresql+psycopg2://u:p@h/db",
        "http://127.0.0.1:8000/signin#token=abcdefghijklmnop",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.QOHq2BkliPnV71h1uk",
        "/tmp/nbvenv/lib/python3.11/site-packages/dagster/x.py:1: BetaWarning",
        "File /work/main/wfmon_defs/sensors.py",
    ]
    for text in leaks:
        assert any(rx.search(text) for rx in SECRET_PATTERNS.values()), text
    fine = ["postgresql://wfmon:***@127.0.0.1:5432/wfmon", "2026-12-01  flaky  38  6", "ms/runs"]
    for text in fine:
        assert not any(rx.search(text) for rx in SECRET_PATTERNS.values()), text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_text_says_how_make_notebooks_installs_it(path: Path) -> None:
    """The notebook's own words about its packages match ``make notebooks``: the group's
    packages, installed by that target, not a ``pip install`` of something else."""
    text = "\n".join("".join(c["source"]) for c in _cells(path, "markdown"))
    assert "make notebooks" in text
    assert "pip install" not in text
    groups: dict[str, list[str]] = _pyproject()["dependency-groups"]  # type: ignore[assignment]
    for package in sorted(_name(r) for r in groups["notebooks"]):
        assert package in text.lower(), f"{path.name} does not name {package}"


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
