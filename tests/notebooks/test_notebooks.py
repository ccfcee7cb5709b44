"""The data scientists' notebooks: committed without outputs, and each runs top to bottom on a small world.

The world is ``loyalty demo`` in miniature, built once per session in a temporary folder: a simulated bank
(300 customers over 300 days), its history posted through the ledger into a fresh SQLite database, the
feature snapshot and online table, and the churn and offer models trained into a throw-away MLflow store.
Each notebook then runs in a fresh kernel of this very interpreter (a kernel spec written for the test, so
neither a user's own ``python3`` kernel nor an installed spec is needed), with the environment variables its
first cell reads pointing at that world.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = (
    "01_ledger.ipynb",
    "02_features.ipynb",
    "03_churn_models.ipynb",
    "04_offers_uplift.ipynb",
    "05_policy_evaluation.ipynb",
)
CELL_TIMEOUT_SECONDS = 120
KERNEL = "loyalty-notebook-tests"


def test_the_five_notebooks_are_there() -> None:
    assert set(EXPECTED) <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    """Outputs stay out of git: they bloat diffs and can leak customer data. Clear them with
    ``.venv/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb``."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("outputs")]
    counted = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count")]
    assert not with_outputs, f"{path.name}: cells {with_outputs} have outputs"
    assert not counted, f"{path.name}: cells {counted} have execution counts"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_where_the_data_is_from_the_environment(path: Path) -> None:
    """The first code cell takes the ledger (and the simulator's output) from the variables the tests and
    a user set, so nothing points at a hard-coded copy of the demo's data."""
    first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    for name in ("LOYALTY_DATABASE_URL", "LOYALTY_HISTORY_DIR"):
        assert name in first.source, f"{path.name}: the first code cell does not read {name}"


@pytest.fixture(scope="session")
def kernel_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A kernel spec that starts ipykernel with this interpreter (the project's venv)."""
    spec = tmp_path_factory.mktemp("kernels") / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "loyalty (tests)",
                "language": "python",
            }
        )
    )
    return [str(spec.parent)]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Build the small world; return the environment variables that point the notebooks at it."""
    import mlflow
    from loyalty_core import DEFAULT_RULES, load_rules, make_engine, migrate
    from models import OfferRequest, Registration, train_churn, train_offers
    from pipelines import SimConfig, ingest_history, run_feature_job, simulate

    root = tmp_path_factory.mktemp("notebook-world")
    history = root / "history"
    env = {
        "LOYALTY_DATABASE_URL": f"sqlite:///{root / 'loyalty.db'}",
        "LOYALTY_HISTORY_DIR": str(history),
        "LOYALTY_FEATURES_DIR": str(root / "features"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
    }
    rules = load_rules(DEFAULT_RULES)
    summary = simulate(SimConfig(customers=300, days=300, seed=7), history, limits=rules.fraud)
    engine = make_engine(env["LOYALTY_DATABASE_URL"])
    # MLflow's fluent API keeps process-wide URIs (and writes them into os.environ): scope them to the
    # training, so no later test of the session finds this store. The libraries' warnings while the world
    # is built are not under test.
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
        mp.setenv("MLFLOW_REGISTRY_URI", env["MLFLOW_REGISTRY_URI"])
        try:
            migrate(engine)
            report = ingest_history(engine, history, rules=rules)
            assert report.completions_agree, report.notes
            run_feature_job(engine, as_of=summary.end, rules=rules, out_dir=root / "features")
            registration = Registration(tracking_uri=env["MLFLOW_TRACKING_URI"])
            churn = train_churn(engine, rules=rules, registration=registration)
            offers = train_offers(
                engine,
                rules=rules,
                request=OfferRequest(truth_dir=history / "truth"),
                registration=registration,
            )
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
            engine.dispose()
    assert churn.run is not None
    assert churn.run.promoted
    assert offers.run is not None
    assert offers.run.promoted
    assert offers.uplift is not None, "no uplift model for notebook 04"
    assert offers.uplift.version is not None  # notebook 04 reads the latest version, champion or not
    return env


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, world: dict[str, str], kernel_dirs: list[str]) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    nb = nbformat.read(path, as_version=4)
    manager = AsyncKernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs)
    )
    client = NotebookClient(
        nb,
        km=manager,
        timeout=CELL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    env = {
        **os.environ,
        **world,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)
    finally:
        # The kernel clients are collected here, not in whatever test runs next: their finalisers log
        # warnings ("Could not destroy zmq context") into that test's captured stderr.
        del client, manager
        gc.collect()
    errors = [
        f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
        for i, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    executed = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in executed), "every code cell ran"
