"""What every training run records besides its model: the experiment, the code version, the parameters of
the job that ran it, and the requirements and entry point of a logged pyfunc model.

MLflow is imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from loyalty_core import REPO_ROOT
from models.registry.store import artifact_root

REQUIREMENTS = ("mlflow", "lightgbm", "numpy", "pandas", "scikit-learn")
MAX_PARAM_LENGTH = 6000  # MLflow refuses longer parameter values


def ensure_experiment(client: Any, name: str, uri: str) -> str:
    """The experiment's id, creating it with the store's artifact folder the first time."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    root = artifact_root(uri)
    location = (root / name).as_uri() if root is not None else None
    return str(client.create_experiment(name, artifact_location=location))


def git_version(repo: Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the working tree the code runs from; (None, None) outside git."""
    git = shutil.which("git")
    if git is None:
        return None, None
    try:
        commit = subprocess.run(  # noqa: S603 - fixed arguments, git found by shutil.which
            [git, "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(  # noqa: S603 - fixed arguments, git found by shutil.which
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def describe_code(commit: str | None, dirty: bool | None) -> str | None:
    """The code version a model card shows."""
    return None if commit is None else commit + (" (with uncommitted changes)" if dirty else "")


def code_tags(commit: str | None, dirty: bool | None) -> dict[str, str]:
    return (
        {"code.git_commit": commit, "mlflow.source.git.commit": commit, "code.git_dirty": str(dirty)}
        if commit
        else {}
    )


def entry_point(module: str) -> str:
    """Path of a model-from-code entry point (found, not imported: importing one registers a model)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    return spec.origin


def requirements() -> list[str]:
    out = []
    for dist in REQUIREMENTS:
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(dist)
    return out


def job_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The resolved parameters of the job that ran, as run parameters (``job.<section>.<name>``), so a run
    says which values of ``models/jobs/parameters.toml`` (and of its overrides) produced it."""
    return {f"job.{k}": str(v)[:MAX_PARAM_LENGTH] for k, v in params.items()}
