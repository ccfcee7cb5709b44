"""The house rules a reviewer would otherwise check by hand (issue 17), checked on every run.

import-linter (``lint-imports``, in CI) keeps the layers, the independence of data sources from features
and labels, and the pure modules free of I/O libraries; these tests keep what it cannot express: each
package is entered only through its public API, modules stay small, sub-packages declare their API, no
private name crosses a module boundary, and settings are read in one place.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("loyalty_core", "pipelines", "models", "serving")
MAX_LINES = 500
# Alembic's own layout (revision scripts are loaded by path) and vendored static assets are not our modules.
NOT_MODULES = ("loyalty_core/migrations",)
OUR_VARIABLES = ("LOYALTY_", "MLFLOW_TRACKING_URI")


def _sources(*roots: str) -> Iterator[Path]:
    for root in roots:
        yield from sorted((ROOT / root).rglob("*.py"))


def _package_modules() -> Iterator[Path]:
    for path in _sources(*PACKAGES):
        if not any(path.relative_to(ROOT).as_posix().startswith(skip) for skip in NOT_MODULES):
            yield path


def _owner(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    if parts[0] in PACKAGES:
        return parts[0]
    if parts[0] == "tests" and len(parts) > 1 and parts[1] in PACKAGES:
        return parts[1]
    return None


def _code(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    # IPython magics and shell lines are not Python; keep the line count so positions stay right.
    return "\n".join(
        "\n".join("#" if line.lstrip().startswith(("%", "!")) else line for line in cell.splitlines())
        for cell in cells
    )


def _imports_from(tree: ast.AST) -> Iterator[ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node


def test_every_module_of_the_four_packages_is_under_500_lines() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): n
        for path in _package_modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) >= MAX_LINES
    }
    assert not long, f"modules of {MAX_LINES} lines or more (split them by job): {long}"


def test_every_package_and_sub_package_declares_its_public_api() -> None:
    dirs = {path.parent for path in _package_modules()}
    missing = []
    for folder in sorted(dirs):
        init = folder / "__init__.py"
        if not init.exists():
            missing.append(f"{folder.relative_to(ROOT)}: no __init__.py")
            continue
        declared = any(
            isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
            for node in ast.parse(init.read_text(encoding="utf-8")).body
        )
        if not declared:
            missing.append(f"{init.relative_to(ROOT)}: no __all__")
    assert not missing, missing


@pytest.mark.parametrize("package", PACKAGES)
def test_each_public_name_is_importable(package: str) -> None:
    module = importlib.import_module(package)
    absent = [name for name in module.__all__ if not hasattr(module, name)]
    assert not absent, f"{package}.__all__ names what it does not define: {absent}"


def test_other_packages_notebooks_benchmarks_and_scripts_use_only_the_public_api() -> None:
    """A package's inside can move without breaking its users only if no user reaches inside."""
    public = {package: set(importlib.import_module(package).__all__) for package in PACKAGES}
    users = [
        *_sources(*PACKAGES, "tests", "benchmarks", "scripts"),
        *sorted((ROOT / "notebooks").glob("*.ipynb")),
    ]
    breaches = []
    for path in users:
        own = _owner(path)
        for node in _imports_from(ast.parse(_code(path))):
            top = node.module.split(".")[0] if node.module else ""
            if top not in PACKAGES or top == own:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if node.module != top:
                breaches.append(f"{where}: from {node.module} import ... (use `from {top} import`)")
            else:
                unknown = [a.name for a in node.names if a.name not in public[top]]
                if unknown:
                    breaches.append(f"{where}: {unknown} not in {top}.__all__")
    assert not breaches, "\n".join(breaches)


def test_no_private_name_is_imported_from_another_module() -> None:
    breaches = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} from {node.module}"
        for path in _package_modules()
        for node in _imports_from(ast.parse(path.read_text(encoding="utf-8")))
        if node.module and node.module.split(".")[0] in PACKAGES
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert not breaches, breaches


def test_settings_are_read_from_the_environment_in_one_place() -> None:
    """``Settings`` (pydantic-settings) is the one reader: a variable read elsewhere escapes validation and
    the tests' overrides."""
    config = ROOT / "loyalty_core" / "config.py"
    readers = []
    for path in _package_modules():
        if path == config:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                func, key = node.func, node.args[0]
                reads = (isinstance(func, ast.Attribute) and func.attr in {"get", "getenv"}) and (
                    func.attr == "getenv" or getattr(func.value, "attr", None) == "environ"
                )
            elif isinstance(node, ast.Subscript):
                reads, key = getattr(node.value, "attr", None) == "environ", node.slice
            else:
                continue
            if reads and isinstance(key, ast.Constant) and str(key.value).startswith(OUR_VARIABLES):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}: {key.value}")
    assert not readers, readers


def test_pre_commit_lints_formats_and_strips_notebooks() -> None:
    bin_dir = Path(sys.executable).parent
    checked = subprocess.run(
        [str(bin_dir / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    for hook in ("id: ruff", "id: ruff-format", "id: nbstripout"):
        assert hook in config
    notebooks = sorted(str(p) for p in (ROOT / "notebooks").glob("*.ipynb"))
    stripped = subprocess.run(
        [str(bin_dir / "nbstripout"), "--keep-id", "--verify", *notebooks],
        capture_output=True,
        text=True,
    )
    assert stripped.returncode == 0, stripped.stdout + stripped.stderr
