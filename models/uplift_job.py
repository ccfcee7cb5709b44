"""The uplift model of ``loyalty train offers``: a two-model learner on the randomised campaigns, evaluated
out of time (and against the simulator's truth when given), logged and registered as ``loyalty-offer-uplift``.

Rows (``pipelines.uplift_labels``): per campaign decision and offer arm, treated rows (the arm was sent)
and control rows (no offer), each with its logged assignment probability. The outcome is the same in both
arms, ``met``: a transaction in the offer's validity met its condition, activated or not. The difference is
then what sending causes. Comparing "completed it if sent" with "met it if not" (the ``outcome`` column)
would also count the activation step, so a customer who buys anyway but never activates would look harmed
by the offer. The expected-value policy charges the cost on completions through the propensity, apart.
Inputs are the offer model's own columns (``models.assemble.OfferInputs``) at the midnight before the
campaign, so batch scoring and the service build one matrix per (customer, offer) for propensity and uplift
alike.

Out of time: the campaigns up to the day before the offer model's validation cutoff train, the campaign of
that cutoff is the holdout. On it: ``uplift_qini`` and ``uplift_auuc`` of the predicted uplift, against
``uplift_qini_propensity``, the same curve ranked by the plain propensity model (what the uplift adds over
"send to who will complete"). With ``truth_dir`` (the simulator's ``truth/offer_effects.parquet``):
Spearman correlations, over every customer of the holdout cutoff x every arm, of the predicted uplift and of
the propensity with the true ``incremental_uplift`` (the effect of sending on meeting the condition: what
the learner estimates) and with the truth's ``uplift`` (completion if sent minus meeting the condition if
not, the contract's column).

The registered model holds two scorers (``treated/`` and ``control/``: booster + ``scorer.json`` each);
``load_uplift`` returns them. Every new version gets the alias ``challenger`` (the latest trained, for
notebooks and reviews); ``champion``, which the service and batch scoring use, moves only when the new
model's Qini on this holdout beats both targeting by the propensity model on the same rows and random
targeting (Qini 0), and then the current champion's Qini on those rows (``promotion``). An uplift model that
adds nothing over "send to who will complete" would only add noise to the expected values, so without a
champion the policy uses its propensity formula. ``promote_uplift`` is the deliberate, recorded override.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sqlalchemy import Engine

from loyalty_core import InvalidInput, LoyaltyError, NotFound, Unavailable
from models.assemble import OfferInputs
from models.calibration import Calibrator
from models.job_common import Progress, day, no_progress, use_store
from models.scorer import CHAMPION, META_FILE, Scorer, aliased_version, downloaded
from models.store import registry_client
from models.uplift import TwoModelUplift, auuc, ipw_weights, qini_coefficient
from pipelines import (
    FEATURE_NAMES,
    FeatureConfig,
    LedgerFrames,
    compute_features,
    has_control,
    read_decisions,
    truth_file,
    uplift_labels,
)

log = logging.getLogger(__name__)

UPLIFT_MODEL = "loyalty-offer-uplift"
CHALLENGER = "challenger"  # alias of the latest registered version, promoted or not
ARMS = ("treated", "control")
TARGET = "met"  # the uplift_labels column both arms are compared on (see the module docstring)
# Small learners: each is evaluated on every eligible (customer, offer) pair in batch scoring. On the
# simulator (2,000 customers x 400 days) 60 trees at 0.1, or 100-200 shallower ones, rank pairs by their true
# incremental uplift no better than 20 at 0.2 (Spearman 0.01 or less: little signal at that size), with
# three to ten times the trees to score.
UPLIFT_PARAMS: dict[str, Any] = {
    "n_estimators": 20,
    "learning_rate": 0.2,
    "num_leaves": 15,
    "min_child_samples": 40,
}


class UpliftScorers(NamedTuple):
    treated: Scorer
    control: Scorer
    version: str | None

    @property
    def features(self) -> tuple[str, ...]:
        return self.treated.features

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """P(meet the condition | sent) - P(meet the condition | not sent) per row."""
        return np.asarray(self.treated.predict_proba(matrix) - self.control.predict_proba(matrix))


@dataclass
class UpliftReport:
    rows: int
    train_rows: int
    holdout_rows: int
    holdout_cutoff: str
    metrics: dict[str, float]
    version: str | None = None
    promoted: bool = False
    reason: str = ""
    run_id: str | None = None
    scorers: UpliftScorers | None = field(default=None, repr=False)

    def lines(self) -> list[str]:
        m = self.metrics
        out = [
            f"uplift (two-model learner): {self.train_rows:,} training rows, holdout campaign "
            f"{self.holdout_cutoff} ({self.holdout_rows:,} rows): Qini {m['uplift_qini']:.4f} "
            f"(ranking by propensity instead: {m['uplift_qini_propensity']:.4f}), AUUC {m['uplift_auuc']:.4f}"
        ]
        if "uplift_truth_spearman" in m:
            out.append(
                f"vs the simulator's truth: Spearman {m['uplift_truth_spearman_incremental']:.3f} with the "
                f"incremental uplift (what it estimates), {m['uplift_truth_spearman']:.3f} with the "
                f"completion uplift; the propensity alone {m['propensity_truth_spearman_incremental']:.3f} "
                f"and {m['propensity_truth_spearman']:.3f}"
            )
        if self.version is not None:
            out.append(f"{UPLIFT_MODEL} v{self.version}: {self.reason}")
        return out


def scorers_of(model: TwoModelUplift, *, num_threads: int = 0) -> UpliftScorers:
    """The fitted T-learner as two ``Scorer``s (identity calibration: LightGBM's own probabilities)."""
    identity = Calibrator("sigmoid", a=1.0, b=0.0)
    arms = [
        Scorer(
            _named(m.booster_, model.features_),
            identity,
            model.features_,
            meta={"kind": "uplift", "arm": arm},
            num_threads=num_threads,
        )
        for arm, m in zip(ARMS, (model.treated_model_, model.control_model_), strict=True)
    ]
    return UpliftScorers(arms[0], arms[1], None)


def _named(booster: lgb.Booster, features: Sequence[str]) -> lgb.Booster:
    """The booster with our column names (the learners were fitted on a bare matrix: Column_0, ...)."""
    lines = booster.model_to_string().splitlines()
    named = [
        ("feature_names=" + " ".join(features)) if ln.startswith("feature_names=") else ln for ln in lines
    ]
    return lgb.Booster(model_str="\n".join(named) + "\n")


def uplift_frame(
    frames: LedgerFrames,
    labels: pd.DataFrame,
    inputs: OfferInputs,
    features_at: dict[pd.Timestamp, pd.DataFrame],
    config: FeatureConfig,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, pd.DataFrame]]:
    """Model inputs per uplift row (features as of each row's cutoff), with the label columns."""
    parts = []
    for cutoff, rows in labels.groupby("cutoff", sort=True):
        stamp = pd.Timestamp(str(cutoff))
        if stamp not in features_at:
            features_at[stamp] = compute_features(frames, stamp, config)
        features = features_at[stamp]
        matrix = np.ascontiguousarray(
            features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        matrix = np.vstack([matrix, np.full((1, matrix.shape[1]), np.nan)])
        pos = pd.Index(features["customer_id"]).get_indexer(pd.Index(rows["customer_id"]))
        x = inputs.pairs(matrix, np.where(pos < 0, len(matrix) - 1, pos), rows["offer_id"].tolist())
        part = pd.DataFrame(x, columns=list(inputs.columns))
        for col in ("customer_id", "offer_id", "treated", "probability", "outcome", "met"):
            part[col] = rows[col].to_numpy()
        part["as_of"] = stamp
        parts.append(part)
    return pd.concat(parts, ignore_index=True), features_at


def _truth(truth_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(
        truth_file(truth_dir, "offer_effects.parquet"),
        columns=["customer_id", "offer_id", "uplift", "incremental_uplift"],
    )


def truth_metrics(
    truth: pd.DataFrame,
    features: pd.DataFrame,
    inputs: OfferInputs,
    arms: Sequence[str],
    scorers: UpliftScorers,
    propensity: Any,
) -> dict[str, float]:
    """Spearman of predicted uplift (and of the propensity) with the true effects, all customers x arms."""
    matrix = np.ascontiguousarray(features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan))
    x = inputs.matrix(matrix, list(arms))
    predicted = scorers.predict(x)
    prop = propensity.predict_proba(x)[:, 1]
    pairs = pd.DataFrame(
        {
            "customer_id": np.repeat(features["customer_id"].astype("str").to_numpy(), len(arms)),
            "offer_id": np.tile(np.asarray(arms, dtype=object), len(features)),
            "predicted": predicted,
            "propensity": prop,
        }
    ).merge(truth, on=["customer_id", "offer_id"], how="inner")
    if len(pairs) < 10:
        raise InvalidInput("the truth file does not match this ledger's customers and offers", field="truth")
    return {
        "uplift_truth_spearman": float(spearmanr(pairs["predicted"], pairs["uplift"]).statistic),
        "uplift_truth_spearman_incremental": float(
            spearmanr(pairs["predicted"], pairs["incremental_uplift"]).statistic
        ),
        "propensity_truth_spearman": float(spearmanr(pairs["propensity"], pairs["uplift"]).statistic),
        "propensity_truth_spearman_incremental": float(
            spearmanr(pairs["propensity"], pairs["incremental_uplift"]).statistic
        ),
        "uplift_truth_pairs": float(len(pairs)),
    }


def fit_uplift(
    rows: pd.DataFrame, columns: Sequence[str], params: dict[str, Any] | None = None
) -> TwoModelUplift:
    """The T-learner on ``uplift_frame`` rows, both arms compared on ``TARGET`` (see the module docstring)."""
    model = TwoModelUplift(
        features=list(columns), propensity_column="probability", **{**UPLIFT_PARAMS, **(params or {})}
    )
    return model.fit(rows, rows[TARGET])


def train_uplift(
    engine: Engine,
    *,
    frames: LedgerFrames,
    catalogue: pd.DataFrame,
    features_at: dict[pd.Timestamp, pd.DataFrame],
    columns: Sequence[str],
    as_of: pd.Timestamp,
    end: pd.Timestamp,
    config: FeatureConfig,
    propensity: Any,
    truth_dir: Path | None = None,
    tracking_uri: str | None = None,
    register: bool = True,
    promote: bool = True,
    params: dict[str, Any] | None = None,
    progress: Progress = no_progress,
) -> UpliftReport | None:
    """Fit, evaluate, log and register the uplift model; None when the log has no control group."""
    decisions = read_decisions(engine, until=(as_of + pd.Timedelta(days=1)).to_pydatetime())
    if not has_control(decisions):
        log.info("no randomised control group in the decision log: no uplift model")
        return None
    progress("uplift", 0, 3)
    labels = uplift_labels(frames, decisions, catalogue, end=end)
    labels = labels[labels["cutoff"] <= as_of]
    cutoffs = sorted(pd.unique(labels["cutoff"]))
    if len(cutoffs) < 2:
        log.info("uplift needs at least two campaigns before %s; found %d", day(as_of), len(cutoffs))
        return None
    inputs = OfferInputs(FEATURE_NAMES, catalogue, columns=columns)
    frame, features_at = uplift_frame(frames, labels, inputs, features_at, config)
    holdout_cutoff = pd.Timestamp(cutoffs[-1])
    hold = (frame["as_of"] == holdout_cutoff).to_numpy()
    train_part, holdout = frame[~hold].reset_index(drop=True), frame[hold].reset_index(drop=True)
    progress("uplift", 1, 3)
    scorers = scorers_of(fit_uplift(train_part, columns, params))
    x_hold = np.ascontiguousarray(holdout[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan))
    predicted = scorers.predict(x_hold)
    y = holdout[TARGET].to_numpy()
    treated = holdout["treated"].to_numpy()
    weight = ipw_weights(treated.astype(bool), holdout["probability"].to_numpy(dtype=np.float64))
    by_propensity = propensity.predict_proba(x_hold)[:, 1]
    metrics = {
        "uplift_qini": qini_coefficient(y, predicted, treated, weight),
        "uplift_auuc": auuc(y, predicted, treated, weight),
        "uplift_qini_propensity": qini_coefficient(y, by_propensity, treated, weight),
        "uplift_train_rows": float(len(train_part)),
        "uplift_holdout_rows": float(len(holdout)),
    }
    if truth_dir is not None:
        arms = sorted(set(labels["offer_id"]))
        metrics.update(
            truth_metrics(
                _truth(Path(truth_dir)), features_at[holdout_cutoff], inputs, arms, scorers, propensity
            )
        )
    progress("uplift", 1, 3)
    report = UpliftReport(
        rows=len(frame),
        train_rows=len(train_part),
        holdout_rows=len(holdout),
        holdout_cutoff=day(holdout_cutoff),
        metrics=metrics,
        scorers=scorers,
    )
    if register:
        evaluation = Holdout(
            labels=labels[labels["cutoff"] == holdout_cutoff].reset_index(drop=True),
            features=features_at[holdout_cutoff],
            catalogue=catalogue,
            y=y,
            treated=treated,
            weight=weight,
            scores={"uplift model": predicted, "propensity model": by_propensity},
        )
        log_uplift(report, scorers, evaluation, holdout, columns, tracking_uri=tracking_uri, promote=promote)
    progress("uplift", 1, 3)
    return report


# --- registry ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Holdout:
    """The holdout campaign's rows and what is needed to build any model's inputs for them (the champion
    may read other columns than the challenger)."""

    labels: pd.DataFrame  # uplift_labels rows of the holdout cutoff
    features: pd.DataFrame  # customer features as of that cutoff
    catalogue: pd.DataFrame
    y: np.ndarray
    treated: np.ndarray
    weight: np.ndarray
    # the rows' scores by each ranking the run compares (the new model's uplift, the propensity), for plots
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)

    def matrix(self, columns: Sequence[str]) -> np.ndarray:
        inputs = OfferInputs(FEATURE_NAMES, self.catalogue, columns=columns)
        matrix = np.ascontiguousarray(
            self.features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64, na_value=np.nan)
        )
        matrix = np.vstack([matrix, np.full((1, matrix.shape[1]), np.nan)])
        pos = pd.Index(self.features["customer_id"]).get_indexer(pd.Index(self.labels["customer_id"]))
        rows = np.where(pos < 0, len(matrix) - 1, pos)
        return inputs.pairs(matrix, rows, self.labels["offer_id"].tolist())


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
) -> None:
    """A run in the ``loyalty-offer-uplift`` experiment, a new registered version, the alias if better."""
    import mlflow
    from models.tracking import _requirements, ensure_experiment, git_version

    uri, client = registry_client(tracking_uri)
    experiment_id = ensure_experiment(client, UPLIFT_MODEL, uri)
    champion_version, champion_qini, problem = _champion_qini(client, uri, holdout)
    decision, reason = promotion(
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
                "learner": "two-model (T-learner), LightGBM, IPW by the logged assignment probability",
                "holdout_cutoff": report.holdout_cutoff,
                "target": f"{TARGET} (treated vs control)",
                "n_features": len(columns),
                **{f"model.{k}": v for k, v in UPLIFT_PARAMS.items()},
            }
        )
        mlflow.set_tags(
            {
                "task": "uplift",
                "promotion": reason,
                "promotion.decision": "promoted" if decision else "rejected",
                **({"code.git_commit": commit, "code.git_dirty": str(dirty)} if commit else {}),
            }
        )
        mlflow.log_dict({"features": list(columns)}, "features.json")
        artifacts: dict[str, str] = {}
        for arm, scorer in zip(ARMS, (scorers.treated, scorers.control), strict=True):
            scorer.save(Path(tmp) / arm)
            artifacts[arm] = str(Path(tmp) / arm)
        example = example[list(columns)].head(5).astype("float64")
        from mlflow.models import infer_signature

        signature = infer_signature(example, scorers.predict(example.to_numpy()))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("uplift_pyfunc_entry.py")),
            artifacts=artifacts,
            signature=signature,
            input_example=example,
            registered_model_name=UPLIFT_MODEL,
            pip_requirements=_requirements(),
            metadata={"task": "uplift", "features": len(columns)},
        )
        version = str(info.registered_model_version)
        run_id = run.info.run_id
        for path, figure in uplift_figures(holdout, scorers, columns).items():
            mlflow.log_figure(figure, path)
        code_version = None if commit is None else commit + (" (with uncommitted changes)" if dirty else "")
        card = uplift_card(
            report,
            scorers,
            columns,
            version=version,
            run_id=run_id,
            promotion=reason,
            champion_version=champion_version,
            champion_qini=champion_qini,
            code_version=code_version,
        )
        mlflow.log_text(card, "model_card.md")
    client.set_model_version_tag(UPLIFT_MODEL, version, "promotion", reason)
    client.set_registered_model_alias(UPLIFT_MODEL, CHALLENGER, version)
    if decision:
        client.set_registered_model_alias(UPLIFT_MODEL, CHAMPION, version)
    report.version, report.promoted, report.reason, report.run_id = version, decision, reason, run_id


def _gain(scorer: Scorer) -> np.ndarray:
    return np.asarray(scorer.booster.feature_importance(importance_type="gain"), dtype=np.float64)


def uplift_figures(holdout: Holdout, scorers: UpliftScorers, columns: Sequence[str]) -> dict[str, Any]:
    """The plots a reviewer of an uplift run looks at, like the churn and offer runs': the Qini curves on
    the holdout campaign (the model, ranking by propensity, random targeting) and each arm's importance."""
    from matplotlib.figure import Figure

    from models.evaluation import plot_importance
    from models.uplift import qini_curve

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
        importance = plot_importance(list(columns), _gain(scorer))
        importance.axes[0].set_title(f"Feature importance (gain), {arm} arm's model")
        figures[f"plots/feature_importance_{arm}.png"] = importance
    return figures


def uplift_card(
    report: UpliftReport,
    scorers: UpliftScorers,
    columns: Sequence[str],
    *,
    version: str | None,
    run_id: str,
    promotion: str,
    champion_version: str | None = None,
    champion_qini: float | None = None,
    code_version: str | None = None,
) -> str:
    """The run's model card (markdown), the same kind the churn and offer runs log (``models.card``)."""
    m = report.metrics

    def top(scorer: Scorer) -> str:
        gain = _gain(scorer)
        return ", ".join(f"`{columns[i]}`" for i in np.argsort(-gain)[:8] if gain[i] > 0) or "none"

    champion = (
        f"| champion v{champion_version} | {champion_qini:.4f} | |"
        if champion_version is not None and champion_qini is not None
        else "| current champion | none | |"
    )
    truth = (
        [
            "",
            "Against the simulator's truth (Spearman over every customer x offer of the holdout cutoff): "
            f"{m['uplift_truth_spearman_incremental']:.3f} with the incremental uplift the model estimates "
            f"(ranking by propensity: {m['propensity_truth_spearman_incremental']:.3f}).",
        ]
        if "uplift_truth_spearman_incremental" in m
        else []
    )
    lines = [
        f"# Model card: {UPLIFT_MODEL}" + (f" v{version}" if version else ""),
        "",
        f"- MLflow run: `{run_id}`",
        f"- code version: `{code_version or 'unknown'}`",
        f"- **promotion: {promotion}**",
        "",
        "## Intended use",
        "",
        "Estimates how much sending an offer raises a customer's chance of meeting its condition (treated "
        "minus control). Only the `champion` version is used, by the expected-value policy and batch "
        "scoring; without a champion the policy ranks by propensity x (value - cost). Not a propensity: "
        "a high score means the offer changes behaviour, not that the customer will complete it.",
        "",
        "## Data",
        "",
        f"- learner: two models (T-learner), LightGBM, rows weighted by the inverse of their logged "
        f"assignment probability; target `{TARGET}` in both arms",
        f"- rows: {report.rows:,} ({report.train_rows:,} training, {report.holdout_rows:,} holdout)",
        f"- holdout (out of time): the campaign of {report.holdout_cutoff}, untouched by training",
        f"- {len(columns)} features; most important (gain): treated arm {top(scorers.treated)}; "
        f"control arm {top(scorers.control)}",
        "",
        "## Metrics on the holdout campaign",
        "",
        "| ranking | Qini | AUUC |",
        "| --- | ---: | ---: |",
        f"| this model | {m['uplift_qini']:.4f} | {m['uplift_auuc']:.4f} |",
        f"| by propensity | {m['uplift_qini_propensity']:.4f} | |",
        "| random targeting | 0 | |",
        champion,
        *truth,
        "",
        "## Caveats",
        "",
        "- One holdout campaign: its offers, season and control share may be unusual, and a small campaign's "
        "Qini is noisy.",
        "- The effect is estimated only for offers and customers like those the randomised campaigns "
        "reached.",
        "",
    ]
    return "\n".join(lines)


def promotion(
    qini: float,
    propensity_qini: float,
    *,
    promote: bool,
    champion_version: str | None,
    champion_qini: float | None,
    problem: str | None = None,
) -> tuple[bool, str]:
    """Whether a new uplift model becomes champion, and why, from its Qini and the baselines' on its holdout.

    First it must beat what the policy does without it: ranking by propensity, and random targeting (a
    negative Qini ranks worse than chance). Then it must beat the current champion on the same rows.
    """
    if not promote:
        return False, f"not promoted (promotion disabled; Qini {qini:.4f})"
    if not qini > max(propensity_qini, 0.0):
        baseline = (
            f"ranking by propensity ({propensity_qini:.4f})"
            if propensity_qini > 0.0
            else f"random targeting (0; ranking by propensity: {propensity_qini:.4f})"
        )
        kept = "" if champion_version is None else f"; champion v{champion_version} stays"
        return False, (
            f"not promoted (Qini {qini:.4f} does not beat {baseline} on this holdout: it would add noise to "
            f"the expected values, which use the propensity formula without an uplift champion{kept})"
        )
    if champion_version is None:
        return True, (
            f"promoted (no champion yet; Qini {qini:.4f} beats ranking by propensity "
            f"{propensity_qini:.4f} and random targeting)"
        )
    if champion_qini is None:
        return True, f"promoted (champion v{champion_version} could not be scored: {problem})"
    if qini > champion_qini:
        return True, f"promoted (Qini {qini:.4f} > champion v{champion_version} {champion_qini:.4f})"
    return False, (
        f"not promoted (Qini {qini:.4f} <= champion v{champion_version} {champion_qini:.4f} on this holdout)"
    )


def promote_uplift(version: str, *, reason: str, tracking_uri: str | None = None) -> None:
    """Make ``version`` the uplift champion against the job's verdict: the override is a person's decision,
    so it needs a reason, which is recorded on the version beside the job's own."""
    from mlflow.exceptions import MlflowException

    if not reason.strip():
        raise InvalidInput("overriding the promotion decision needs a reason", field="reason")
    uri, client = registry_client(tracking_uri)
    try:
        client.get_model_version(UPLIFT_MODEL, version)
    except MlflowException as exc:
        raise NotFound(
            f"{UPLIFT_MODEL} has no version {version!r} in {uri}", code="unknown_model_version"
        ) from exc
    client.set_model_version_tag(UPLIFT_MODEL, version, "promotion.override", reason)
    client.set_registered_model_alias(UPLIFT_MODEL, CHAMPION, version)


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
