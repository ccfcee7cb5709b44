"""The registered uplift model ``loyalty-offer-uplift``: its two scorers, how a run of it is logged and
judged, and how the service and batch scoring load it.

The registered model holds two scorers (``treated/`` and ``control/``: booster + ``scorer.json`` each);
``load_uplift`` returns them. Every new version gets the alias ``challenger`` (the latest trained, for
notebooks and reviews); ``champion``, which the service and batch scoring use, moves only when the new
model's Qini on the holdout campaign beats both targeting by the propensity model on the same rows and
random targeting (Qini 0), and then the current champion's Qini on those rows
(``models.registry.promotion.decide_uplift_promotion``). ``promote_uplift`` is the deliberate, recorded
override.

The scorers themselves and the holdout they are judged on are ``models.registry.uplift_scorers`` (pure).
MLflow is imported inside the functions.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import LoyaltyError, Unavailable
from models.evaluation import plot_importance, qini_coefficient, qini_curve
from models.registry.card import gain_importance, uplift_card
from models.registry.champions import CHAMPION, aliased_version, downloaded
from models.registry.promotion import (
    decide_uplift_promotion,
    mark_challenger,
    promote_version,
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
from models.registry.store import registry_client, use_store
from models.registry.uplift_scorers import (
    ARMS,
    TARGET,
    UPLIFT_MODEL,
    Holdout,
    UpliftReport,
    UpliftScorers,
)
from models.scorer.scorer import META_FILE, Scorer

log = logging.getLogger(__name__)

ENTRY_POINT = "models.registry.uplift_pyfunc_entry"


def _champion_qini(client: Any, uri: str, holdout: Holdout) -> tuple[str | None, float | None, str | None]:
    """(version, its Qini on this holdout, problem) of the current champion."""
    current = aliased_version(client, UPLIFT_MODEL, CHAMPION, uri)
    if current is None:
        return None, None, None
    try:
        champion = load_uplift(tracking_uri=uri)
        predicted = champion.predict(holdout.matrix(champion.features))
        return champion.version, qini_coefficient(holdout.y, predicted, holdout.treated, holdout.weight), None
    except LoyaltyError as exc:
        return str(current.version), None, exc.message


def log_uplift(
    report: UpliftReport,
    scorers: UpliftScorers,
    holdout: Holdout,
    example: pd.DataFrame,
    columns: Sequence[str],
    *,
    tracking_uri: str | None = None,
    promote: bool = True,
    parameters: Mapping[str, Any] | None = None,
) -> None:
    """A run in the ``loyalty-offer-uplift`` experiment, a new registered version, the alias if better.

    ``parameters``: the job's resolved parameters (``models.jobs.params``); the learner's are the
    ``uplift.*`` ones among them, logged as ``model.*`` too."""
    import mlflow

    uri, client = registry_client(tracking_uri)
    experiment_id = ensure_experiment(client, UPLIFT_MODEL, uri)
    champion_version, champion_qini, problem = _champion_qini(client, uri, holdout)
    decision = decide_uplift_promotion(
        report.metrics["uplift_qini"],
        report.metrics["uplift_qini_propensity"],
        promote=promote,
        champion_version=champion_version,
        champion_qini=champion_qini,
        problem=problem,
    )
    commit, dirty = git_version()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with (
        mlflow.start_run(
            experiment_id=experiment_id, run_name=f"uplift, holdout {report.holdout_cutoff}"
        ) as run,
        tempfile.TemporaryDirectory(prefix="loyalty-uplift-") as tmp,
    ):
        metrics = dict(report.metrics)
        if champion_qini is not None:
            metrics["champion_uplift_qini"] = champion_qini
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_params(
            {
                "learner": f"{report.chosen}, LightGBM, IPW by the logged assignment probability",
                "uplift.chosen": report.chosen,
                "holdout_cutoff": report.holdout_cutoff,
                "target": f"{TARGET} (treated vs control)",
                "n_features": len(columns),
                **{
                    f"model.{k.removeprefix('uplift.')}": v
                    for k, v in (parameters or {}).items()
                    if k.startswith("uplift.")
                },
                **job_params(parameters or {}),
            }
        )
        mlflow.set_tags({"task": "uplift", **decision.run_tags(), **code_tags(commit, dirty)})
        mlflow.log_dict({"features": list(columns)}, "features.json")
        if report.cv_table is not None:
            mlflow.log_text(report.cv_table.to_csv(index=False), "uplift_cv.csv")
        artifacts: dict[str, str] = {}
        for arm, scorer in zip(ARMS, (scorers.treated, scorers.control), strict=True):
            scorer.save(Path(tmp) / arm)
            artifacts[arm] = str(Path(tmp) / arm)
        example = example[list(columns)].head(5).astype("float64")
        from mlflow.models import infer_signature

        signature = infer_signature(example, scorers.predict(example.to_numpy()))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=entry_point(ENTRY_POINT),
            artifacts=artifacts,
            signature=signature,
            input_example=example,
            registered_model_name=UPLIFT_MODEL,
            pip_requirements=requirements(),
            metadata={"task": "uplift", "features": len(columns)},
        )
        version = str(info.registered_model_version)
        run_id = run.info.run_id
        for path, figure in uplift_figures(holdout, scorers, columns).items():
            mlflow.log_figure(figure, path)
        code_version = describe_code(commit, dirty)
        card = uplift_card(
            report,
            scorers,
            columns,
            version=version,
            run_id=run_id,
            promotion=decision.reason,
            champion_version=champion_version,
            champion_qini=champion_qini,
            code_version=code_version,
            name=UPLIFT_MODEL,
            target=TARGET,
        )
        mlflow.log_text(card, "model_card.md")
    mark_challenger(client, UPLIFT_MODEL, version)
    record_promotion(client, UPLIFT_MODEL, version, decision)
    report.version, report.promoted, report.reason, report.run_id = (
        version,
        decision.promote,
        decision.reason,
        run_id,
    )


def uplift_figures(holdout: Holdout, scorers: UpliftScorers, columns: Sequence[str]) -> dict[str, Any]:
    """The plots a reviewer of an uplift run looks at, like the churn and offer runs': the Qini curves on
    the holdout campaign (the model, ranking by propensity, random targeting) and each arm's importance."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.5), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    end = 0.0
    for name, score in holdout.scores.items():
        share, qini = qini_curve(holdout.y, score, holdout.treated, holdout.weight)
        coefficient = qini_coefficient(holdout.y, score, holdout.treated, holdout.weight)
        ax.plot(share, qini, label=f"{name} (Qini {coefficient:.4f})")
        end = float(qini[-1])
    ax.plot([0.0, 1.0], [0.0, end], linestyle="--", color="grey", label="random targeting")
    ax.set_xlabel("share of the holdout campaign targeted (by score)")
    ax.set_ylabel("incremental responses per customer")
    ax.set_title("Qini curves on the holdout campaign")
    ax.legend(loc="best")
    figures: dict[str, Any] = {"plots/qini.png": figure}
    for arm, scorer in zip(ARMS, (scorers.treated, scorers.control), strict=True):
        importance = plot_importance(list(columns), gain_importance(scorer))
        importance.axes[0].set_title(f"Feature importance (gain), {arm} arm's model")
        figures[f"plots/feature_importance_{arm}.png"] = importance
    return figures


def promote_uplift(version: str, *, reason: str, tracking_uri: str | None = None) -> None:
    """Make ``version`` the uplift champion against the job's verdict (``promote_version``)."""
    promote_version(UPLIFT_MODEL, version, reason=reason, tracking_uri=tracking_uri)


def load_uplift(
    name: str = UPLIFT_MODEL, alias: str = CHAMPION, *, tracking_uri: str | None = None, num_threads: int = 0
) -> UpliftScorers:
    """The two scorers behind ``models:/loyalty-offer-uplift@champion``; ``Unavailable`` when none."""
    found: dict[str, Scorer] = {}
    with downloaded(name, alias, use_store(tracking_uri)) as (version, local):
        for arm in ARMS:
            hits = sorted(p.parent for p in local.rglob(META_FILE) if p.parent.name == arm)
            if not hits:
                raise Unavailable(f"{name} v{version.version} has no {arm}/ scorer", model=name)
            try:
                found[arm] = Scorer.from_dir(hits[0], num_threads=num_threads)
            except (OSError, ValueError, KeyError) as exc:
                raise Unavailable(
                    f"{name} v{version.version} is broken: {exc}",
                    model=name,
                    public=f"{name} v{version.version} is broken",
                ) from exc
    return UpliftScorers(found["treated"], found["control"], str(version.version))
