"""Evaluation: how good a score, an uplift model or a policy is, on a holdout or a decision log.

``metrics`` (holdout metrics of a binary score, the names logged to MLflow) and ``plots`` (the same scores
drawn); ``uplift_curves`` (Qini and uplift curves on a randomised holdout); ``ope`` (off-policy estimates
of a candidate policy from another policy's log) and ``verdict`` (a candidate against production on the
same log, with the paired interval of the difference).
"""

from models.evaluation.incremental import (
    IncrementalLog,
    PolicyTerms,
    caused_by_first_offers,
    compare_incremental,
    evaluate_incremental,
    incremental_log,
    policy_terms_incremental,
    true_incremental_value,
)
from models.evaluation.metrics import (
    HIGHER_IS_BETTER,
    METRICS,
    classification_metrics,
    gains,
    gap_to_truth,
    is_better,
    lift_at,
    prefixed,
)
from models.evaluation.ope import (
    Z95,
    Estimate,
    OfferLog,
    SEMethod,
    doubly_robust,
    effective_sample_size,
    evaluate,
    expected_reward,
    importance_weights,
    ips,
    offer_log,
    policy_terms,
    snips,
)
from models.evaluation.plots import plot_calibration, plot_contributions, plot_gains, plot_importance
from models.evaluation.uplift_curves import (
    auuc,
    average_effect,
    qini_coefficient,
    qini_curve,
    uplift_at,
    uplift_curve,
    uplift_report,
)
from models.evaluation.verdict import (
    MIN_ESS,
    Method,
    Outcome,
    Verdict,
    compare_with_production,
    paired_verdict,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "MIN_ESS",
    "Z95",
    "Estimate",
    "IncrementalLog",
    "Method",
    "OfferLog",
    "Outcome",
    "PolicyTerms",
    "SEMethod",
    "Verdict",
    "auuc",
    "average_effect",
    "caused_by_first_offers",
    "classification_metrics",
    "compare_incremental",
    "compare_with_production",
    "doubly_robust",
    "effective_sample_size",
    "evaluate",
    "evaluate_incremental",
    "expected_reward",
    "gains",
    "gap_to_truth",
    "importance_weights",
    "incremental_log",
    "ips",
    "is_better",
    "lift_at",
    "offer_log",
    "paired_verdict",
    "plot_calibration",
    "plot_contributions",
    "plot_gains",
    "plot_importance",
    "policy_terms",
    "policy_terms_incremental",
    "prefixed",
    "qini_coefficient",
    "qini_curve",
    "snips",
    "true_incremental_value",
    "uplift_at",
    "uplift_curve",
    "uplift_report",
]
