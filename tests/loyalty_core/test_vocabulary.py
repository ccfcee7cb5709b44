"""The vocabularies: one definition, and the catch-all word is never one of their members."""

from __future__ import annotations

from loyalty_core import CATEGORIES, CHANNELS, GENDERS, OFFER_EVENT_NAMES, OFFER_FUNNEL, OTHER, REGIONS


def test_vocabularies_name_no_catch_all_and_no_duplicate() -> None:
    for words in (CATEGORIES, CHANNELS, GENDERS, REGIONS, OFFER_EVENT_NAMES):
        assert OTHER not in words
        assert len(set(words)) == len(words)


def test_offer_events_start_with_the_funnel() -> None:
    assert OFFER_EVENT_NAMES[: len(OFFER_FUNNEL)] == OFFER_FUNNEL
