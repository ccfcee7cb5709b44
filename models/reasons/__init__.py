"""Reason codes in words: why a model scored a customer (or a customer x offer pair) as it did.

``codes`` picks the features whose contributions moved the score and phrases them; the phrases are data
(``feature_phrases``, ``input_phrases``, ``words``, put together in ``phrases``); ``reference`` renders them
all as ``docs/reason_phrases.md`` (``python -m models.reasons``).
"""

from models.reasons.codes import MIN_CONTRIBUTION, Reason, describe, explain, humanize
from models.reasons.phrases import FLAGS, MISSING_DEFAULT, MISSING_PHRASES, NEUTRAL_PHRASES, PHRASES
from models.reasons.reference import model_input_names, reason_phrases_markdown

__all__ = [
    "FLAGS",
    "MIN_CONTRIBUTION",
    "MISSING_DEFAULT",
    "MISSING_PHRASES",
    "NEUTRAL_PHRASES",
    "PHRASES",
    "Reason",
    "describe",
    "explain",
    "humanize",
    "model_input_names",
    "reason_phrases_markdown",
]
