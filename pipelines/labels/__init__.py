"""Labels over the ledger as of a cutoff: churn and offer response (``outcomes``), and uplift per campaign
decision and offer arm (``uplift``)."""

from pipelines.labels.outcomes import (
    CHURN_ACTIVITY,
    CHURN_HORIZON_DAYS,
    churn_label_counts,
    churn_labels,
    data_end,
    offer_response_labels,
    training_set,
)
from pipelines.labels.uplift import has_control, read_decisions, uplift_labels

__all__ = [
    "CHURN_ACTIVITY",
    "CHURN_HORIZON_DAYS",
    "churn_label_counts",
    "churn_labels",
    "data_end",
    "has_control",
    "offer_response_labels",
    "read_decisions",
    "training_set",
    "uplift_labels",
]
