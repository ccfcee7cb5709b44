"""The model card: one markdown page per run saying what the model saw, how well it did, and what not to do.

Written for the person who decides whether to trust a score (a marketer, a risk reviewer), not for the
person who trained it; it sits beside the model in MLflow as ``model_card.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from models.evaluation import METRICS

if TYPE_CHECKING:
    from models.estimators.training import TrainingResult
    from models.registry.uplift_scorers import UpliftReport, UpliftScorers
    from models.scorer.scorer import Scorer

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "log_loss": "log-loss (lower is better)",
    "brier": "Brier score (lower is better)",
    "lift_at_10pct": "lift in the top 10 %",
}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def model_card(
    result: TrainingResult,
    *,
    version: str | None,
    run_id: str,
    promotion: str,
    champion_metrics: Mapping[str, float] | None = None,
    champion_version: str | None = None,
    code_version: str | None = None,
) -> str:
    task = result.task
    data: dict[str, Any] = result.data
    m = result.metrics
    champion_header = f"champion v{champion_version}" if champion_version else "champion"
    rows = [
        f"| {METRIC_LABELS[k]} | {_fmt(m[f'val_{k}'])} | {_fmt(m[f'raw_val_{k}'])} | "
        f"{_fmt(m[f'baseline_val_{k}'])} | "
        f"{_fmt(champion_metrics.get(k) if champion_metrics else None)} |"
        for k in METRICS
    ]
    caveats = list(task.caveats)
    if data.get("inner_split") == "random":
        caveats.append(
            "Only one training cutoff was available: early stopping and calibration used a random 20 % of "
            "its rows, not a later period, so the calibration does not account for drift over time."
        )
    caveats.append(
        f"Metrics come from one validation cutoff ({', '.join(result.validation_cutoffs)}); a single period "
        "can be unusual (season, a big campaign)."
    )
    top = ", ".join(f"`{f}`" for f in _top_features(result, 10))
    lines = [
        f"# Model card: {task.registered_model}" + (f" v{version}" if version else ""),
        "",
        f"- MLflow run: `{run_id}`",
        f"- code version: `{code_version or 'unknown'}`",
        f"- **promotion: {promotion}**",
        "",
        "## Intended use",
        "",
        task.intended_use,
        "",
        "## Data",
        "",
        f"- label: `{result.spec.label}`; keys: {', '.join(f'`{k}`' for k in result.spec.keys)}",
        f"- rows: {data['rows']:,} ({data['train_rows']:,} training, {data['validation_rows']:,} validation)"
        + (f"; customers: {data['customers']:,}" if data.get("customers") else "")
        + (f"; offers: {data['offers']}" if data.get("offers") else ""),
        f"- training cutoffs: {', '.join(result.train_cutoffs)}",
        f"  - trees grown on: {', '.join(data['fit_cutoffs']) or 'all (random inner split)'}",
        f"  - early stopping and calibration ({data['calibration_method']}) on: "
        f"{data['calibration_cutoff'] or 'a random 20 % of training rows'}",
        f"- validation cutoff (out of time, untouched by training): {', '.join(result.validation_cutoffs)}",
        f"- positive rate: {data['train_positive_rate']:.3%} training, "
        f"{data['validation_positive_rate']:.3%} validation",
        f"- dataset SHA-256: `{data['sha256']}`",
        f"- {len(result.features)} features; most important (gain): {top}",
        "",
        "## Metrics on the validation cutoff",
        "",
        f"| metric | model (calibrated) | model (raw) | baseline: {task.baseline_name} | {champion_header} |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        *_candidate_lines(data),
        _trees_line(m),
        "",
        "## Caveats",
        "",
        *[f"- {c}" for c in caveats],
        "",
    ]
    return "\n".join(lines)


def _candidate_lines(data: Mapping[str, Any]) -> list[str]:
    """The churn job's candidates on this holdout, and which one this version is (``churn_candidates``)."""
    candidates = data.get("candidates")
    if not candidates:
        return []
    figures = ", ".join(f"{name} {m['roc_auc']:.4f}" for name, m in candidates.items())
    return [
        f"Registered model: candidate `{data.get('candidate', 'lightgbm')}`, the best on this holdout "
        f"(ROC AUC: {figures}); labels over {data.get('label_days')} days.",
        "",
    ]


def _top_features(result: TrainingResult, n: int) -> list[str]:
    gain = result.model.importance()
    order = gain.argsort()[::-1][:n]
    return [result.features[i] for i in order if gain[i] > 0]


def _trees_line(m: Mapping[str, float]) -> str:
    """What the registered booster holds: after a refit or averaged seeds, not the early-stopped count."""
    chosen = int(m["best_iteration"])
    if "trees" not in m or int(m["trees"]) == chosen:
        return f"Trees: {chosen} (early stopping on the calibration cutoff's log-loss)."
    return (
        f"Trees: {int(m['trees'])} in the registered booster; early stopping on the calibration cutoff's "
        f"log-loss chose {chosen} (regrown on every training cutoff and/or averaged over seeds: see the run)."
    )


def gain_importance(scorer: Scorer) -> np.ndarray:
    """Total gain per input column of a scorer's trees (the importance the cards and plots show)."""
    return np.asarray(scorer.booster.feature_importance(importance_type="gain"), dtype=np.float64)


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
    name: str,
    target: str,
) -> str:
    """An uplift run's model card (markdown), the same kind the churn and offer runs log: ``name`` is the
    registered model, ``target`` the outcome both arms are compared on."""
    m = report.metrics

    def top(scorer: Scorer) -> str:
        gain = gain_importance(scorer)
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
        f"# Model card: {name}" + (f" v{version}" if version else ""),
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
        f"- learner: `{report.chosen}`, chosen by cross-validated Qini on the training campaigns (see "
        "the run's `uplift_cv.csv`), LightGBM, rows weighted by the inverse of their logged "
        f"assignment probability; target `{target}` in both arms",
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
