"""Churn and offer-response labels computed by hand, and training sets stacked over cutoffs."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from sqlalchemy import Engine

from loyalty_core import InvalidInput
from pipelines.features.catalogue import FEATURE_NAMES
from pipelines.features.extract import extract
from pipelines.features.frames import LedgerFrames
from pipelines.labels.outcomes import churn_labels, data_end, offer_response_labels, training_set
from tests.pipelines.conftest import CUTOFF, RULES

DAY0 = pd.Timestamp("2026-01-01", tz="UTC")


def day(n: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


def _txns(rows: list[tuple[str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(len(rows)),
            "customer_id": [r[0] for r in rows],
            "occurred_at": [day(r[1]) for r in rows],
            "type": [r[2] for r in rows],
            "amount": 100.0,
            "points": 1,
        }
    )


def churn_frames() -> LedgerFrames:
    # Cutoff day 100, horizon 90: the label window is [day 100, day 190).
    return LedgerFrames.from_frames(
        customers=pd.DataFrame(
            {"customer_id": ["a", "b", "c", "d", "e", "f", "g"], "joined_on": [day(0)] * 6 + [day(150)]}
        ),
        transactions=_txns(
            [
                ("a", 50, "purchase"),
                ("a", 120, "purchase"),  # active inside the window
                ("b", 150, "transfer"),  # a transfer alone is not qualifying activity by default
                ("c", 10, "bill_payment"),
                ("c", 195, "purchase"),  # after the window
                ("e", 100, "bill_payment"),  # exactly at the cutoff: label side
                ("f", 190, "purchase"),  # exactly at the window's end: outside
                ("g", 160, "purchase"),  # g joins on day 150: not known at the cutoff
                ("z", 299.5, "purchase"),  # the data runs to day 300
            ]
        ),
    )


def test_churn_is_no_qualifying_activity_in_the_horizon() -> None:
    frames = churn_frames()
    labels = churn_labels(frames, day(100))
    assert dict(zip(labels["customer_id"], labels["churned"], strict=True)) == {
        "a": 0,
        "b": 1,
        "c": 1,
        "d": 1,
        "e": 0,
        "f": 1,
    }
    assert (labels["as_of"] == day(100)).all()
    broad = churn_labels(frames, day(100), activity=("purchase", "bill_payment", "transfer"))
    assert broad.set_index("customer_id").loc["b", "churned"] == 0
    short = churn_labels(frames, day(100), horizon_days=30)  # [100, 130): only a and e are active
    assert set(short.loc[short["churned"] == 0, "customer_id"]) == {"a", "e"}


def test_churn_labels_need_a_complete_window(caplog: pytest.LogCaptureFixture) -> None:
    frames = churn_frames()
    assert data_end(frames) == day(300)
    assert len(churn_labels(frames, day(210))) == 7  # [210, 300) ends exactly with the data; g joined
    with caplog.at_level(logging.WARNING):
        late = churn_labels(frames, day(211))
    assert late.empty
    assert list(late.columns) == ["customer_id", "as_of", "churned"]
    assert "after the data" in caplog.text
    assert len(churn_labels(frames, day(211), end=day(400))) == 7  # the caller knows the data goes on
    with pytest.raises(InvalidInput, match="horizon_days"):
        churn_labels(frames, day(100), horizon_days=0)


def _event(
    i: int, who: str, offer: str, kind: str, event: str, at: float, days: int = 7
) -> dict[str, object]:
    return {
        "id": i,
        "customer_id": who,
        "offer_id": offer,
        "offer_kind": kind,
        "duration_days": days,
        "event": event,
        "occurred_at": day(at),
        "decision_id": f"d{i}" if event == "sent" else None,
    }


def offer_frames() -> LedgerFrames:
    events = [
        _event(1, "alice", "bonus", "bonus_points", "sent", 0),
        _event(2, "alice", "bonus", "bonus_points", "viewed", 1),
        _event(3, "alice", "bonus", "bonus_points", "completed", 3),  # within [0, 7)
        _event(4, "alice", "bonus", "bonus_points", "sent", 10),
        _event(5, "alice", "bonus", "bonus_points", "completed", 17),  # validity of the day-10 send ended
        _event(6, "bob", "cash", "cashback", "sent", 0),
        _event(7, "bob", "cash", "cashback", "sent", 2),
        _event(8, "bob", "cash", "cashback", "completed", 4),  # credited to the latest send (day 2)
        _event(9, "bob", "cash", "cashback", "completed", -1),  # before any send: credited to none
        _event(10, "bob", "info", "informational", "sent", 1),
        _event(11, "carl", "bonus", "bonus_points", "sent", 25),  # valid until day 32, data ends day 30
        _event(12, "carl", "bonus", "bonus_points", "completed", 26),
        _event(13, "dora", "bonus", "bonus_points", "sent", 5),
        _event(14, "dora", "cash", "cashback", "completed", 6),  # another offer: does not count
    ]
    return LedgerFrames.from_frames(
        offer_events=pd.DataFrame(events), transactions=_txns([("z", 29.5, "purchase")])
    )


def test_offer_response_is_completion_within_the_validity_of_the_send() -> None:
    labels = offer_response_labels(offer_frames())
    got = {
        (r.customer_id, r.offer_id, r.sent_at): (r.viewed, r.completed)
        for r in labels.itertuples(index=False)
    }
    assert got == {
        ("alice", "bonus", day(0)): (1, 1),
        ("alice", "bonus", day(10)): (0, 0),
        ("bob", "cash", day(0)): (0, 0),
        ("bob", "cash", day(2)): (0, 1),
        ("dora", "bonus", day(5)): (0, 0),
    }
    first = labels[(labels["customer_id"] == "alice") & (labels["sent_at"] == day(0))].iloc[0]
    assert (first["completed_at"], first["valid_until"], first["decision_id"]) == (day(3), day(7), "d1")
    assert pd.isna(labels.loc[labels["completed"] == 0, "completed_at"]).all()


def test_offer_response_options() -> None:
    frames = offer_frames()
    with_info = offer_response_labels(frames, include_informational=True)
    info = with_info[with_info["offer_kind"] == "informational"]
    assert (len(info), int(info["completed"].sum())) == (1, 0)
    later = offer_response_labels(frames, end=day(40))  # carl's send is complete now
    assert later.set_index("customer_id").loc["carl", "completed"] == 1
    window = offer_response_labels(frames, sent_from=day(1), sent_until=day(10))
    assert list(window["sent_at"]) == [day(2), day(5)]


def test_training_set_stacks_cutoffs_with_keys() -> None:
    frames = churn_frames()
    ts = training_set(frames, [day(100), day(60)])
    assert list(ts.columns[:2]) == ["customer_id", "as_of"]
    assert list(ts.columns[-1:]) == ["churned"]
    assert set(FEATURE_NAMES) <= set(ts.columns)
    assert not ts.duplicated(["customer_id", "as_of"]).any()
    assert ts.groupby("as_of").size().to_dict() == {day(60): 6, day(100): 6}
    first = ts[ts["as_of"] == day(60)].set_index("customer_id")
    assert (first.loc["a", "txn_count_365d"], first.loc["a", "churned"]) == (1, 0)  # day 120 < 60 + 90
    with pytest.raises(InvalidInput, match="cutoff 2026-08-01: the 90-day churn window ends"):
        training_set(frames, [day(100), day(212)])


def test_offer_training_set_gives_each_send_one_cutoff() -> None:
    frames = offer_frames()
    ts = training_set(
        LedgerFrames.from_frames(
            customers=pd.DataFrame({"customer_id": ["alice", "bob", "dora"], "joined_on": [day(-30)] * 3}),
            offer_events=frames.offer_events.astype({"offer_kind": "str", "event": "str", "channel": "str"}),
            transactions=frames.transactions,
        ),
        [day(0), day(4)],
        label="offer_response",
        send_window_days=7,
    )
    assert list(zip(ts["customer_id"], ts["as_of"], ts["sent_at"], strict=True)) == [
        ("alice", day(0), day(0)),
        ("bob", day(0), day(0)),
        ("bob", day(0), day(2)),  # [0, 7) is cut at the next cutoff: [0, 4)
        ("alice", day(4), day(10)),
        ("dora", day(4), day(5)),
    ]
    # Features are as of the cutoff: a send is not visible to its own row, earlier ones are.
    assert list(ts["offers_sent"]) == [0, 0, 0, 1, 0]
    assert list(ts["completed"]) == [1, 0, 1, 0, 0]
    with pytest.raises(InvalidInput, match="label must be"):
        training_set(frames, [day(0)], label="clv")


def test_labels_from_the_tiny_ledger(tiny_ledger: Engine) -> None:
    frames = extract(tiny_ledger, rules=RULES)
    assert data_end(frames) == pd.Timestamp("2026-03-06", tz="UTC")  # last transaction 2026-03-05
    churn = churn_labels(frames, CUTOFF, horizon_days=5)  # [03-01, 03-06): alice buys on 03-05
    assert dict(zip(churn["customer_id"], churn["churned"], strict=True)) == {"alice": 0, "bob": 1, "erin": 1}
    assert churn_labels(frames, CUTOFF).empty  # 90 days are not in the data yet
    offers = offer_response_labels(frames)
    # x2 was never completed. The bonus offer was, by a3 (the ledger wrote the completion), but its validity
    # runs to 03-12, after the data (03-06): left out, like bob's send of 03-01. No informational send.
    assert list(zip(offers["offer_id"], offers["completed"], strict=True)) == [("x2", 0)]
    later = offer_response_labels(frames, end="2026-04-01")  # had the data run to April
    assert list(zip(later["offer_id"], later["completed"], strict=True)) == [
        ("x2", 0),
        ("bonus", 1),
        ("bonus", 0),
    ]
    assert later.iloc[1]["completed_at"] == pd.Timestamp("2026-02-20T18:00:00", tz="UTC")
