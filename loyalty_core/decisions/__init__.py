"""The decision log: the record of every choice the service makes, the feedback joined to it, and the reads
that eligibility and shadow evaluation need. ``record`` owns the row's shape; nothing else builds one."""

from loyalty_core.decisions.facts import (
    IN_CHUNK,
    ContactRow,
    CustomerFacts,
    contacts_since,
    customer_facts,
    running_activations,
    tiers_at,
)
from loyalty_core.decisions.feedback import FEEDBACK_EVENTS, offered_decision, record_feedback
from loyalty_core.decisions.record import (
    DECISIONS,
    SHADOW_PREFIX,
    SHADOW_SUFFIX,
    DecisionRecord,
    RankingLike,
    SlateOffer,
    decision_rows,
    record_decisions,
    shadow_id,
    shadow_policy,
)
from loyalty_core.decisions.shadows import shadow_pairs

__all__ = [
    "DECISIONS",
    "FEEDBACK_EVENTS",
    "IN_CHUNK",
    "SHADOW_PREFIX",
    "SHADOW_SUFFIX",
    "ContactRow",
    "CustomerFacts",
    "DecisionRecord",
    "RankingLike",
    "SlateOffer",
    "contacts_since",
    "customer_facts",
    "decision_rows",
    "offered_decision",
    "record_decisions",
    "record_feedback",
    "running_activations",
    "shadow_id",
    "shadow_pairs",
    "shadow_policy",
    "tiers_at",
]
