"""``python -m models.reasons > docs/reason_phrases.md``: writes the reference page of every reason phrase."""

import sys

from models.reasons.reference import reason_phrases_markdown

sys.stdout.write(reason_phrases_markdown())
