"""When the ``champion`` alias moves, for every model of the platform: one decision type, one way to
record it.

Promotion compares like with like: the challenger's and the champion's metric on the *same* holdout (the
champion's logged metrics came from an older, different holdout and are never used). Each kind of model
has its own rule (``decide_promotion`` for the churn and offer classifiers, ``decide_uplift_promotion`` for
the uplift model, which must also beat ranking by propensity), but the outcome is the same ``Promotion``
and ``record_promotion`` writes it the same way: the reason in the ``promotion`` tag of the version, the
``challenger`` alias when the model keeps one, the ``champion`` alias when promoted. ``promote_version`` is
the deliberate, recorded override by a person.

MLflow is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from loyalty_core import InvalidInput, LoyaltyError, NotFound, Unavailable
from models.evaluation import classification_metrics, is_better
from models.registry.champions import CHALLENGER, CHAMPION, aliased_version, load_champion
from models.registry.store import registry_client

if TYPE_CHECKING:
    from models.estimators.training import TrainingResult

PROMOTION_TAG = "promotion"
OVERRIDE_TAG = "promotion.override"
DEFAULT_METRIC = "val_roc_auc"


class Promotion(NamedTuple):
    """Whether the new version becomes champion, and the sentence saying why (recorded with it)."""

    promote: bool
    reason: str

    def run_tags(self) -> dict[str, str]:
        """The tags a run carries about its own promotion."""
        return {PROMOTION_TAG: self.reason, "promotion.decision": "promoted" if self.promote else "rejected"}


# --- the classifiers (churn, offers) ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChampionCheck:
    """The current champion re-scored on the challenger's holdout (or why it could not be)."""

    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    problem: str | None = None


def check_champion(client: Any, name: str, result: TrainingResult, uri: str) -> ChampionCheck:
    current = aliased_version(client, name, CHAMPION, uri)
    if current is None:
        return ChampionCheck()
    try:
        champion = load_champion(name, tracking_uri=uri, num_threads=result.model.n_jobs)
    except Unavailable as exc:
        return ChampionCheck(version=str(current.version), problem=exc.message)
    try:
        matrix = champion.scorer.matrix(result.validation)
        proba = champion.scorer.predict_proba(matrix)
        metrics = classification_metrics(result.y_val, proba)
    except LoyaltyError as exc:
        return ChampionCheck(version=champion.version, problem=exc.message)
    return ChampionCheck(version=champion.version, metrics=metrics)


def decide_promotion(
    metrics: Mapping[str, float],
    champion: ChampionCheck,
    *,
    metric: str = DEFAULT_METRIC,
    min_delta: float = 0.0,
    allowed: bool = True,
) -> Promotion:
    """Promote only when the challenger beats the champion on the same holdout by more than ``min_delta``."""
    if metric not in metrics:
        raise InvalidInput(f"unknown promotion metric {metric!r}", field="metric")
    new = metrics[metric]
    if not allowed:
        return Promotion(False, f"not promoted (promotion disabled for this run; {metric} {new:.4f})")
    if champion.problem is not None:
        who = f"champion v{champion.version}" if champion.version else "the champion"
        return Promotion(True, f"promoted ({who} could not be scored on this holdout: {champion.problem})")
    if champion.version is None:
        return Promotion(True, f"promoted (no champion yet; {metric} {new:.4f})")
    old = champion.metrics[metric.rsplit("val_", 1)[-1]]
    if is_better(metric, new, old, min_delta):
        op = ">" if is_better(metric, 1.0, 0.0) else "<"
        return Promotion(
            True, f"promoted ({metric} {new:.4f} {op} champion v{champion.version} {old:.4f} on this holdout)"
        )
    higher_is_better = is_better(metric, 1.0, 0.0)
    op = "<=" if higher_is_better else ">="
    margin = f" {'+' if higher_is_better else '-'} {min_delta:g}" if min_delta else ""
    return Promotion(
        False,
        f"not promoted ({metric} {new:.4f} {op} champion v{champion.version} {old:.4f}{margin} "
        "on this holdout)",
    )


# --- the uplift model -------------------------------------------------------------------------------------
def decide_uplift_promotion(
    qini: float,
    propensity_qini: float,
    *,
    promote: bool,
    champion_version: str | None,
    champion_qini: float | None,
    problem: str | None = None,
) -> Promotion:
    """Whether a new uplift model becomes champion, and why, from its Qini and the baselines' on its holdout.

    First it must beat what the policy does without it: ranking by propensity, and random targeting (a
    negative Qini ranks worse than chance). Then it must beat the current champion on the same rows.
    """
    if not promote:
        return Promotion(False, f"not promoted (promotion disabled; Qini {qini:.4f})")
    if not qini > max(propensity_qini, 0.0):
        baseline = (
            f"ranking by propensity ({propensity_qini:.4f})"
            if propensity_qini > 0.0
            else f"random targeting (0; ranking by propensity: {propensity_qini:.4f})"
        )
        kept = "" if champion_version is None else f"; champion v{champion_version} stays"
        return Promotion(
            False,
            f"not promoted (Qini {qini:.4f} does not beat {baseline} on this holdout: it would add noise to "
            f"the expected values, which use the propensity formula without an uplift champion{kept})",
        )
    if champion_version is None:
        return Promotion(
            True,
            f"promoted (no champion yet; Qini {qini:.4f} beats ranking by propensity "
            f"{propensity_qini:.4f} and random targeting)",
        )
    if champion_qini is None:
        return Promotion(True, f"promoted (champion v{champion_version} could not be scored: {problem})")
    if qini > champion_qini:
        return Promotion(
            True, f"promoted (Qini {qini:.4f} > champion v{champion_version} {champion_qini:.4f})"
        )
    return Promotion(
        False,
        f"not promoted (Qini {qini:.4f} <= champion v{champion_version} {champion_qini:.4f} on this holdout)",
    )


# --- recording --------------------------------------------------------------------------------------------
def record_promotion(client: Any, name: str, version: str, decision: Promotion) -> None:
    """Write the decision on the registered version and, when promoted, move ``champion`` to it."""
    client.set_model_version_tag(name, version, PROMOTION_TAG, decision.reason)
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version)


def mark_challenger(client: Any, name: str, version: str) -> None:
    """The ``challenger`` alias: the latest version trained, promoted or not (for notebooks and reviews)."""
    client.set_registered_model_alias(name, CHALLENGER, version)


def promote_version(name: str, version: str, *, reason: str, tracking_uri: str | None = None) -> None:
    """Make ``version`` of ``name`` the champion against the job's verdict: the override is a person's
    decision, so it needs a reason, which is recorded on the version beside the job's own."""
    from mlflow.exceptions import MlflowException

    if not reason.strip():
        raise InvalidInput("overriding the promotion decision needs a reason", field="reason")
    uri, client = registry_client(tracking_uri)
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        raise NotFound(f"{name} has no version {version!r} in {uri}", code="unknown_model_version") from exc
    client.set_model_version_tag(name, version, OVERRIDE_TAG, reason)
    client.set_registered_model_alias(name, CHAMPION, version)
