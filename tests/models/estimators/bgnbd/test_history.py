"""Point-in-time BG/NBD histories from a transaction log: UTC days, nothing at or after the cutoff."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from loyalty_core import InvalidInput
from models.estimators.bgnbd import (
    BetaGeoNBD,
    simulate_bgnbd,
    summarise,
)
from tests.models.estimators.bgnbd.conftest import PAPER, UTC, rfm

AS_OF = dt.datetime(2025, 1, 29, tzinfo=UTC)


def events() -> pd.DataFrame:
    stamps = [
        ("A", "2025-01-01T10:00:00Z"),
        ("A", "2025-01-01T18:00:00Z"),  # same day: the same purchase occasion
        ("A", "2025-01-08T09:00:00Z"),
        ("A", "2025-01-15T23:59:00Z"),
        ("B", "2025-01-20T12:00:00Z"),
        ("C", "2025-01-29T00:00:00Z"),  # at as_of: not seen
    ]
    return pd.DataFrame(
        {
            "customer_id": [c for c, _ in stamps],
            "occurred_at": pd.to_datetime([s for _, s in stamps], utc=True),
        }
    )


def test_summarise_by_hand() -> None:
    summary = summarise(events(), as_of=AS_OF)
    expected = pd.DataFrame(
        {"frequency": [2, 0], "recency": [2.0, 0.0], "T": [4.0, 9 / 7]},
        index=pd.Index(["A", "B"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(summary, expected, check_index_type=False)
    in_days = summarise(events(), as_of=AS_OF, unit_days=1)
    assert list(in_days.loc["A"]) == [2, 14.0, 28.0]


def test_summarise_sees_nothing_on_or_after_as_of() -> None:
    later = pd.DataFrame(
        {
            "customer_id": ["A", "B", "D", "A"],
            "occurred_at": pd.to_datetime(
                [
                    "2025-01-29T00:00:00Z",
                    "2025-02-03T08:00:00Z",
                    "2025-01-30T00:00:00Z",
                    "2026-01-01T00:00:00Z",
                ],
                utc=True,
            ),
        }
    )
    before = summarise(events(), as_of=AS_OF)
    after = summarise(pd.concat([later, events()], ignore_index=True), as_of=AS_OF)
    pd.testing.assert_frame_equal(after, before)
    # a plain date is midnight UTC of that day
    pd.testing.assert_frame_equal(summarise(events(), as_of=dt.date(2025, 1, 29)), before)
    # nobody had bought yet: an empty frame of the same shape, not an error
    nothing_yet = summarise(later, as_of=AS_OF)
    assert nothing_yet.empty
    assert list(nothing_yet.columns) == ["frequency", "recency", "T"]


def test_summarise_counts_utc_days_whatever_the_column_timezone() -> None:
    moscow = events()
    moscow["occurred_at"] = moscow["occurred_at"].dt.tz_convert("Europe/Moscow")
    pd.testing.assert_frame_equal(summarise(moscow, as_of=AS_OF), summarise(events(), as_of=AS_OF))
    # 01:00 in Moscow on the 29th is 22:00 UTC on the 28th: before the cutoff, on the 28th
    late = pd.DataFrame(
        {
            "customer_id": ["E"],
            "occurred_at": pd.DatetimeIndex([pd.Timestamp("2025-01-29T01:00", tz="Europe/Moscow")]),
        }
    )
    assert list(summarise(late, as_of=AS_OF, unit_days=1).loc["E"]) == [0, 0.0, 1.0]


def test_summarise_output_feeds_the_model() -> None:
    model = BetaGeoNBD().fit(simulate_bgnbd(2_000, 52.0, PAPER, seed=9))
    summary = summarise(events(), as_of=AS_OF)
    assert model.churn_score(4, *rfm(summary)).shape == (2,)
    assert np.isfinite(model.score(summary))


def naive_times() -> pd.DataFrame:
    frame = events()
    frame["occurred_at"] = frame["occurred_at"].dt.tz_localize(None)
    return frame


def missing_customer() -> pd.DataFrame:
    frame = events()
    frame.loc[1, "customer_id"] = None
    return frame


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (events().drop(columns="occurred_at"), {}, "lack column\\(s\\) occurred_at"),
        (naive_times(), {}, "timezone-aware timestamps"),
        (missing_customer(), {}, "'customer_id' is empty at row 1"),
        (events(), {"as_of": dt.datetime(2025, 1, 29)}, "as_of must be timezone-aware"),
        (events(), {"unit_days": 0}, "unit_days must be a positive"),
    ],
)
def test_summarise_rejects_bad_input(frame: pd.DataFrame, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        summarise(frame, **{"as_of": AS_OF, **kwargs})  # type: ignore[arg-type]
