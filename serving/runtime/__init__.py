"""What the service keeps running between requests: model slots, micro-batchers, the decision writer."""

from serving.runtime.decision_writer import DecisionWriter
from serving.runtime.shadow import shadow_report

__all__ = [
    "DecisionWriter",
    "shadow_report",
]
