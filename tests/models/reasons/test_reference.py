"""Every reason phrase as marketing will read it, and the generated page that shows them all."""

from __future__ import annotations

import re

from loyalty_core import REPO_ROOT
from models.reasons import (
    FLAGS,
    MISSING_PHRASES,
    NEUTRAL_PHRASES,
    PHRASES,
    describe,
    model_input_names,
    reason_phrases_markdown,
)

# --- every phrase, as marketing will read it -------------------------------------------------------------

DOC = REPO_ROOT / "docs" / "reason_phrases.md"


def _rendered() -> list[tuple[str, str, str]]:
    """(input, case, phrase) for every model input, both directions and missing."""
    out = []
    for name in model_input_names():
        high, low = (1.0, 0.0) if name in FLAGS else (2.0, 0.5)
        for case, value in (("higher", high), ("lower", low), ("missing", None)):
            phrase = describe(name, value, 1.0)
            assert phrase is not None, (name, case)
            out.append((name, case, phrase))
    return out


def test_every_model_input_has_written_phrases() -> None:
    """No input falls back to words built from its column name (that built "no average pair threshold to on
    record" and "does not have share of channel branch")."""
    from pipelines import CATALOGUE

    names = model_input_names()
    assert len(names) > 150
    assert [n for n in names if n not in PHRASES and n not in NEUTRAL_PHRASES] == []
    can_be_missing = [f.name for f in CATALOGUE if "NaN" in f.meaning]
    assert [n for n in can_be_missing if n not in MISSING_PHRASES] == []


def test_reason_phrases_read_like_sentences() -> None:
    smells = {
        "a raw column name": re.compile(r"_"),
        "a doubled word": re.compile(r"\b(\w+) \1\b", re.IGNORECASE),
        "'no ... to on'": re.compile(r"\bto on\b|^no\b"),
        "'a' before a vowel": re.compile(r"\ba [aeiou]", re.IGNORECASE),
        "spacing": re.compile(r"^\s|\s$|\s{2}"),
        "a generic phrase": re.compile(r": (higher|lower) than|: not on record"),
        "a claim beyond the value": re.compile(r"already left|has left|will leave|is leaving"),
    }
    found = [
        f"{name} ({case}): {phrase!r} has {smell}"
        for name, case, phrase in _rendered()
        for smell, pattern in smells.items()
        if pattern.search(phrase)
    ]
    assert found == []
    for name in model_input_names():
        if name not in NEUTRAL_PHRASES:
            assert PHRASES[name][0] != PHRASES[name][1], name


def test_reason_phrases_doc_is_current() -> None:
    """docs/reason_phrases.md: every input's phrases in one page for a reviewer."""
    expected = reason_phrases_markdown()
    assert DOC.is_file(), "write it: .venv/bin/python -m models.reasons > docs/reason_phrases.md"
    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/reason_phrases.md is stale: .venv/bin/python -m models.reasons > docs/reason_phrases.md"
    )
    for name, _, phrase in _rendered():
        assert f"`{name}`" in expected
        assert phrase in expected
