"""A newcomer's first hour, walked as the README tells it, in a temporary copy of the repository.

Steps, literally: the quick start's ``.venv/bin/loyalty demo`` (with the size options the README documents,
``--customers 300 --days 300``, so that the walk takes about two minutes), then the Notebooks section's
"run ``loyalty demo`` first, then ``.venv/bin/jupyter lab notebooks/``": every notebook runs in a kernel
whose working directory is ``notebooks/``, as Jupyter starts it, here through
``.venv/bin/jupyter nbconvert --execute``.

What is not walked: ``python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'`` (the copy's ``.venv`` is
a link to this interpreter's environment; ``PYTHONPATH`` points at the copy so that the copy's code runs, not
the checkout the environment was installed from) and ``scripts/test`` (this suite). The environment is
clean: no ``LOYALTY_*`` or ``MLFLOW_*`` variable, since the README asks the user to set none; the clock is
the real one (today's date). Each step's exit status, time and key lines are checked; nothing may appear in
``notebooks/`` (MLflow's own default store, a ``mlflow.db`` in the working directory, did).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = (
    "01_ledger.ipynb",
    "02_features.ipynb",
    "03_churn_models.ipynb",
    "04_offers_uplift.ipynb",
    "05_policy_evaluation.ipynb",
)
DEMO = [".venv/bin/loyalty", "demo", "--customers", "300", "--days", "300"]
STEP_TIMEOUT_SECONDS = 900


def fresh_copy(dst: Path) -> Path:
    """The files a clone would hold (git's tracked files, as they are in the working tree) and a ``.venv``
    linking to this environment; nothing of the checkout's var/ or mlflow/ stores."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout to copy the repository as a clone would have it")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, text=True
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dst / name)
    (dst / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return dst


def clean_env(copy: Path) -> dict[str, str]:
    """The user's shell: none of the variables the README documents are set; the copy's code on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "MLFLOW_"))}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONPATH"] = str(copy)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # the debugger's start-up warning in each kernel
    return env


def step(args: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_SECONDS, check=False
    )
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"`{' '.join(args)}` exited {done.returncode} after {took:.0f} s:\n{output[-4000:]}"
    )
    print(f"$ {' '.join(args)}  ({took:.0f} s)\n{output[-3000:]}")
    return output, took


def first_cell_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    return "".join(o.get("text", "") for o in first.get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.slow
def test_the_readme_quick_start_and_notebooks_work_as_written(tmp_path: Path) -> None:
    copy = fresh_copy(tmp_path / "clone")
    env = clean_env(copy)
    today = dt.datetime.now(dt.UTC).date()

    demo, _ = step(DEMO, cwd=copy, env=env)
    for line in (
        "loyalty-churn v1: promoted",
        "loyalty-offer-propensity v1: promoted",
        f"-> {copy / 'var' / 'demo' / 'scores.parquet'}",
        "Start the service",
        f'"occurred_at": "{today:%Y-%m-%d}T',  # the curl example posts a transaction dated today
    ):
        assert line in demo, f"the demo did not print {line!r}"
    assert (copy / "var" / "loyalty.db").is_file()
    assert (copy / "mlflow" / "mlflow.db").is_file()
    assert (copy / "mlflow" / "artifacts").is_dir()
    before = sorted(p.name for p in (copy / "notebooks").iterdir())

    executed = tmp_path / "executed"
    step(
        [
            ".venv/bin/jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=600",
            f"--output-dir={executed}",
            *(f"notebooks/{name}" for name in NOTEBOOKS),
        ],
        cwd=copy,
        env=env,
    )

    assert sorted(p.name for p in (copy / "notebooks").iterdir()) == before, (
        "running the notebooks wrote into notebooks/ (a store resolved against the kernel's working "
        "directory)"
    )
    assert not (copy / "mlflow.db").exists()
    store = f"sqlite:///{copy / 'mlflow' / 'mlflow.db'}"
    expected = {
        "01_ledger.ipynb": f"ledger: sqlite:///{copy / 'var' / 'loyalty.db'}",
        "03_churn_models.ipynb": f"MLflow store {store}, model loyalty-churn",
        "04_offers_uplift.ipynb": f"MLflow store {store}",
        "05_policy_evaluation.ipynb": f"MLflow store {store}",
    }
    for name in NOTEBOOKS:
        nb = nbformat.read(executed / name, as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code"), (
            f"{name}: a cell did not run"
        )
        if name in expected:
            assert expected[name] in first_cell_text(executed / name), first_cell_text(executed / name)
