"""MLflow at the edge: where runs go, what a training run records, and when the ``champion`` alias moves.

Store: see ``models.registry.store`` (``MLFLOW_TRACKING_URI``, else ``sqlite:///<repo>/mlflow/mlflow.db`` with
artifacts in ``mlflow/artifacts``).

A run records, for ``loyalty-churn`` or ``loyalty-offer-propensity``:
- params (LightGBM hyper-parameters, label, feature count) and data version (rows, cutoffs, dataset
  SHA-256) and code version (git commit, dirty flag);
- metrics ``val_*`` (calibrated model), ``raw_val_*`` (booster before calibration), ``baseline_val_*`` and,
  when there is one, ``champion_val_*``: the current champion re-scored on this run's validation cutoff;
- plots (calibration, gains/lift, importance, TreeSHAP summary), ``features.json``, ``data.json``,
  ``model_card.md``;
- the model (pyfunc with signature and input example, plus the scorer's ``booster.txt``/``scorer.json``),
  registered as a new version.

Promotion (``models.registry.promotion``, the one mechanism of every model) compares the challenger's and
the champion's metric on the *same* holdout. The decision and its reason go in the ``promotion`` tag of
the run and of the version, and in the model card. A job's resolved parameters go in as ``job.*``.

MLflow is imported inside the functions.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models.evaluation import (
    plot_calibration,
    plot_contributions,
    plot_gains,
    plot_importance,
    prefixed,
)
from models.registry.promotion import (
    DEFAULT_METRIC,
    check_champion,
    decide_promotion,
    record_promotion,
)
from models.registry.runs import (
    code_tags,
    describe_code,
    ensure_experiment,
    entry_point,
    git_version,
    job_params,
    requirements,
)
from models.registry.store import registry_client, resolve_tracking_uri

if TYPE_CHECKING:
    from models.estimators.training import TrainingResult

log = logging.getLogger(__name__)

SHAP_SAMPLE = 3000
ENTRY_POINT = "models.registry.pyfunc_entry"


# --- the run ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunReport:
    run_id: str
    experiment_id: str
    model_name: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    champion_version: str | None  # the champion after this run


def _params(result: TrainingResult) -> dict[str, Any]:
    params: dict[str, Any] = {f"model.{k}": v for k, v in result.params.items() if k != "cutoff_column"}
    params.update(
        {
            "task": result.task.name,
            "label": result.spec.label,
            "n_features": len(result.features),
            "baseline": result.task.baseline_name,
            "data.rows": result.data["rows"],
            "data.train_rows": result.data["train_rows"],
            "data.validation_rows": result.data["validation_rows"],
            "data.train_cutoffs": ",".join(result.train_cutoffs),
            "data.validation_cutoffs": ",".join(result.validation_cutoffs),
            "data.calibration_cutoff": result.data["calibration_cutoff"] or "random",
            "data.calibration_method": result.data["calibration_method"],
            "data.sha256": result.data["sha256"],
        }
    )
    return {k: str(v)[:6000] for k, v in params.items()}


def _input_example(result: TrainingResult) -> pd.DataFrame:
    """A few holdout rows with the pipeline's own dtypes, so the signature accepts its frames unchanged
    (numpy ints stay ``long``; nullable and float columns become ``double``)."""
    example = result.validation[result.features].head(5)
    return pd.DataFrame(
        {
            c: example[c].to_numpy()
            if isinstance(example[c].dtype, np.dtype) and example[c].dtype.kind in "iub"
            else example[c].to_numpy(dtype=np.float64, na_value=np.nan)
            for c in result.features
        }
    )


def _log_plots(result: TrainingResult) -> None:
    import mlflow

    scores = {
        "model": result.proba_val,
        "model (raw)": result.raw_proba_val,
        "baseline": result.baseline_proba_val,
    }
    sample = result.validation
    if len(sample) > SHAP_SAMPLE:
        sample = sample.sample(SHAP_SAMPLE, random_state=0)
    contributions = result.model.contributions(sample)
    figures = {
        "plots/calibration.png": plot_calibration(result.y_val, scores),
        "plots/gains_lift.png": plot_gains(
            result.y_val, {"model": result.proba_val, "baseline": scores["baseline"]}
        ),
        "plots/feature_importance.png": plot_importance(result.features, result.model.importance()),
        "plots/shap_summary.png": plot_contributions(
            contributions, result.model._matrix(sample), result.features, max_points=SHAP_SAMPLE
        ),
    }
    for path, fig in figures.items():
        mlflow.log_figure(fig, path)


def challenger_model(name: str) -> str:
    """Where challengers trained outside the job (notebooks, reviews) register, apart from ``name``."""
    return f"{name}-challengers"


def log_training(
    result: TrainingResult,
    *,
    tracking_uri: str | None = None,
    promote: bool = True,
    metric: str = DEFAULT_METRIC,
    min_delta: float = 0.0,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    register_as: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> RunReport:
    """Log a training run and register its model as a new version; move ``champion`` if it is better.

    ``register_as``: the registered model the version goes to, by default the task's (the job's). A
    notebook's challengers go to another name (``challenger_model``): registered beside the job's, they
    became its "latest version" in MLflow's UI and in ``get_latest_versions``, which readers take for what
    the job last trained. They are still judged against the task's champion, on their own holdout, and
    never promoted: ``champion`` of another name is not what the service loads.

    ``parameters``: the job's resolved parameters (``models.jobs.params``), logged as ``job.*``.
    """
    from mlflow.models import infer_signature

    import mlflow
    from models.registry.card import model_card
    from models.registry.pyfunc import ARTIFACT_BOOSTER, ARTIFACT_META
    from models.scorer.scorer import BOOSTER_FILE, META_FILE

    uri, client = registry_client(tracking_uri)
    name = result.task.registered_model
    registered = register_as or name
    if registered != name and promote:
        raise InvalidInput(
            f"a version registered as {registered!r} cannot be promoted: the service loads {name!r}'s "
            "champion (log it with promote=False)",
            field="register_as",
        )
    experiment_id = ensure_experiment(client, name, uri)

    champion = check_champion(client, name, result, uri)
    decision = decide_promotion(result.metrics, champion, metric=metric, min_delta=min_delta, allowed=promote)
    commit, dirty = git_version()
    code_version = describe_code(commit, dirty)

    # The fluent API (start_run, log_model) only follows MLflow's process-wide URIs. They are left pointing
    # at this store afterwards: MLflow's setters also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into
    # os.environ, so "restoring" them would pin a stale store over a later change of the environment.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with (
        mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run,
        tempfile.TemporaryDirectory(prefix="loyalty-run-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        run_id = run.info.run_id
        mlflow.log_params({**_params(result), **job_params(parameters or {})})
        run_tags = {
            "task": result.task.name,
            "data.sha256": result.data["sha256"],
            "data.validation_cutoffs": ",".join(result.validation_cutoffs),
            **decision.run_tags(),
            "promotion.metric": metric,
            **({"champion.version": champion.version} if champion.version else {}),
            **code_tags(commit, dirty),
            **(tags or {}),
        }
        mlflow.set_tags(run_tags)
        metrics = dict(result.metrics)
        if champion.metrics:
            metrics.update(prefixed(champion.metrics, "champion_val_"))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        _log_plots(result)
        mlflow.log_dict({"features": result.features, "reference": result.model.reference_}, "features.json")
        mlflow.log_dict(
            {
                **result.data,
                "train_cutoffs": result.train_cutoffs,
                "validation_cutoffs": result.validation_cutoffs,
            },
            "data.json",
        )

        scorer_dir = tmp / "scorer"
        # a LightGBM or stacked scorer writes booster.txt and scorer.json, BG/NBD only scorer.json
        saved = {path.name: path for path in result.scorer().save(scorer_dir)}
        example = _input_example(result)
        with warnings.catch_warnings():
            # MLflow hints that integer columns cannot hold missing values; ours are counts that never are.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            signature = infer_signature(example, result.model.predict_proba(example)[:, 1])
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=entry_point(ENTRY_POINT),
            artifacts={
                ARTIFACT_META: str(saved[META_FILE]),
                **({ARTIFACT_BOOSTER: str(saved[BOOSTER_FILE])} if BOOSTER_FILE in saved else {}),
            },
            signature=signature,
            input_example=example,
            registered_model_name=registered,
            pip_requirements=requirements(),
            metadata={
                "task": result.task.name,
                "features": len(result.features),
                "model_type": str(result.data.get("candidate", "lightgbm")),
            },
        )
        version = str(info.registered_model_version)
        card = model_card(
            result,
            version=version,
            run_id=run_id,
            promotion=decision.reason,
            champion_metrics=champion.metrics or None,
            champion_version=champion.version,
            code_version=code_version,
        )
        if registered != name:  # the card names the version it describes
            card = card.replace(
                f"# Model card: {name} v{version}",
                f"# Model card: {registered} v{version} (a challenger of {name})",
                1,
            )
        mlflow.log_text(card, "model_card.md")

    client.set_model_version_tag(
        registered, version, "validation_cutoffs", ",".join(result.validation_cutoffs)
    )
    if registered != name:
        client.set_model_version_tag(registered, version, "challenger_of", name)
    client.update_model_version(
        registered,
        version,
        description=(
            f"{name if registered == name else 'a challenger of ' + name} trained on "
            f"{', '.join(result.train_cutoffs)}, validated on "
            f"{', '.join(result.validation_cutoffs)}: {metric} {result.metrics[metric]:.4f} "
            f"(baseline {result.metrics['baseline_' + metric]:.4f}). {decision.reason}."
        ),
    )
    record_promotion(client, registered, version, decision)
    log.info("%s v%s: %s", registered, version, decision.reason)
    return RunReport(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=registered,
        version=version,
        promoted=decision.promote,
        reason=decision.reason,
        metrics=metrics,
        champion_version=version if decision.promote else champion.version,
    )


def load_card(run_id: str, *, tracking_uri: str | None = None) -> str:
    """The model card of a run, as markdown (for the CLI, notebooks and tests)."""
    from mlflow.artifacts import download_artifacts

    uri = resolve_tracking_uri(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="loyalty-card-") as tmp:
        path = download_artifacts(
            run_id=run_id, artifact_path="model_card.md", dst_path=tmp, tracking_uri=uri
        )
        return Path(path).read_text(encoding="utf-8")
