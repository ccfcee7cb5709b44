"""Labels for training: churn after a cutoff, response to each offer sent, and training sets over cutoffs.

Time split. Features see facts dated strictly before the cutoff; labels look at ``[cutoff, cutoff +
horizon)``. The issue writes the label window as ``(cutoff, cutoff + horizon]``; with timestamps, starting it
AT the cutoff makes the two sides a partition of time, so a fact at exactly the cutoff instant belongs to
the label side and no fact is seen by both or by neither.

Completeness. A label is only given when its window is fully inside the data: ``data_end`` (default: the
day after the last transaction, i.e. the data is taken to cover whole days) must not come before the
window's end. Otherwise "no activity" could just mean "no data yet".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from pipelines.features.aggregates import id_codes
from pipelines.features.compute import compute_features
from pipelines.features.config import FeatureConfig
from pipelines.features.cutoff import DAY_US, NAT, TIME_OF, known_customers, micros, to_cutoff
from pipelines.features.frames import LedgerFrames

log = logging.getLogger(__name__)

CHURN_HORIZON_DAYS = 90
CHURN_ACTIVITY = ("purchase", "bill_payment")
Cutoff = dt.datetime | dt.date | str | pd.Timestamp


def data_end(frames: LedgerFrames) -> pd.Timestamp | None:
    """Where the data stops: midnight after the last transaction (None when there is none)."""
    if frames.transactions.empty:
        return None
    last = pd.Timestamp(frames.transactions["occurred_at"].max())
    return (last.floor("D") + pd.Timedelta(days=1)).as_unit("us")


def _end(frames: LedgerFrames, given: Cutoff | None) -> pd.Timestamp | None:
    return to_cutoff(given) if given is not None else data_end(frames)


def churn_labels(
    frames: LedgerFrames,
    as_of: Cutoff,
    *,
    horizon_days: int = CHURN_HORIZON_DAYS,
    activity: Sequence[str] = CHURN_ACTIVITY,
    end: Cutoff | None = None,
) -> pd.DataFrame:
    """``churned`` = 1 when a customer known before ``as_of`` has no ``activity`` transaction in
    ``[as_of, as_of + horizon_days)``; columns ``customer_id, as_of, churned``.

    Empty (with a warning) when the label window is not complete in the data: see the module docstring.
    """
    if horizon_days < 1:
        raise InvalidInput("horizon_days must be at least 1", field="horizon_days")
    cutoff = to_cutoff(as_of)
    stop = cutoff + pd.Timedelta(days=horizon_days)
    last = _end(frames, end)
    ids = known_customers(frames, cutoff)
    if last is None or stop > last:
        log.warning(
            "no churn labels as of %s: the %d-day window ends %s, after the data (%s)",
            cutoff.date(),
            horizon_days,
            stop,
            last,
        )
        ids = ids[:0]
    txns = frames.transactions
    t = micros(txns["occurred_at"])
    start_us, stop_us = cutoff.value // 1000, stop.value // 1000
    inside = (t >= start_us) & (t < stop_us) & txns["type"].astype("str").isin(list(activity)).to_numpy()
    codes = id_codes(txns["customer_id"], ids)[inside]
    active = np.bincount(codes[codes >= 0], minlength=len(ids)) > 0
    return pd.DataFrame(
        {
            "customer_id": pd.Series(ids.to_numpy(), dtype="str"),
            "as_of": pd.Series(np.full(len(ids), start_us, dtype="datetime64[us]")).dt.tz_localize("UTC"),
            "churned": (~active).astype(np.int64),
        }
    )


def churn_label_counts(
    frames: LedgerFrames,
    first: Cutoff,
    last: Cutoff,
    *,
    horizon_days: int = CHURN_HORIZON_DAYS,
    activity: Sequence[str] = CHURN_ACTIVITY,
) -> pd.DataFrame:
    """For every midnight from ``first`` to ``last`` (UTC), how many rows ``churn_labels`` would give
    (``known``) and how many of them churned (``churned``), in one pass over the facts.

    What choosing a training cutoff needs: looking for the latest date whose labels hold both classes means
    trying hundreds of dates when recent days are sparse, and labelling each would cost a pass per date.
    A customer with activity on day ``d`` is active for the cutoffs ``d - horizon + 1 .. d``, and counts
    from the day after the first fact that makes them known; the union of those ranges per customer goes
    into one difference array. The completeness of each window is the caller's to check (``data_end``).
    """
    if horizon_days < 1:
        raise InvalidInput("horizon_days must be at least 1", field="horizon_days")
    lo_day = to_cutoff(first).value // 1000 // DAY_US
    hi_day = to_cutoff(last).value // 1000 // DAY_US
    days = np.arange(lo_day, max(hi_day, lo_day - 1) + 1, dtype=np.int64)
    seen_ids: list[np.ndarray] = []
    seen_at: list[np.ndarray] = []
    for name, time_col in TIME_OF.items():
        frame: pd.DataFrame = getattr(frames, name)
        if frame.empty:
            continue
        t = micros(frame[time_col])
        keep = t != NAT
        seen_ids.append(np.asarray(frame["customer_id"].astype("str").to_numpy(), dtype=object)[keep])
        seen_at.append(t[keep])
    if not seen_ids:
        zeros = np.zeros(len(days), dtype=np.int64)
        return pd.DataFrame({"known": zeros, "churned": zeros}, index=_midnights(days))
    ids = np.concatenate(seen_ids)
    # known from the day after the first fact: a cutoff at midnight c sees facts strictly before c
    first_fact = pd.Series(np.concatenate(seen_at)).groupby(ids, sort=True).min()
    known_from = (first_fact.to_numpy() // DAY_US + 1).astype(np.int64)
    known = np.searchsorted(np.sort(known_from), days, side="right")

    txns = frames.transactions
    inside = txns["type"].astype("str").isin(list(activity)).to_numpy()
    t = micros(txns["occurred_at"])[inside]
    codes = first_fact.index.get_indexer(pd.Index(txns["customer_id"].astype("str").to_numpy()[inside]))
    pairs = pd.DataFrame({"c": codes, "d": t // DAY_US})[codes >= 0].drop_duplicates().sort_values(["c", "d"])
    c, d = pairs["c"].to_numpy(), pairs["d"].to_numpy()
    previous = np.empty_like(d)
    previous[0:1] = np.iinfo(np.int64).min // 2
    previous[1:] = np.where(c[1:] == c[:-1], d[:-1], np.iinfo(np.int64).min // 2)
    start = np.maximum.reduce([d - horizon_days + 1, previous + 1, known_from[c]])
    start, stop = np.maximum(start, lo_day), np.minimum(d, hi_day)
    ok = start <= stop
    diff = np.zeros(len(days) + 1, dtype=np.int64)
    np.add.at(diff, start[ok] - lo_day, 1)
    np.add.at(diff, stop[ok] - lo_day + 1, -1)
    active = np.cumsum(diff)[: len(days)]
    return pd.DataFrame({"known": known.astype(np.int64), "churned": known - active}, index=_midnights(days))


def _midnights(days: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[us]"), name="as_of").tz_localize(
        "UTC"
    )


def offer_response_labels(
    frames: LedgerFrames,
    *,
    sent_from: Cutoff | None = None,
    sent_until: Cutoff | None = None,
    include_informational: bool = False,
    end: Cutoff | None = None,
    closed_end: bool = False,
) -> pd.DataFrame:
    """One row per offer sent in ``[sent_from, sent_until)``: did the customer complete it within the
    offer's validity ``[sent_at, sent_at + duration_days)``?

    ``closed_end``: the validity includes its last instant, ``[sent_at, sent_at + duration_days]``. The
    ledger's windows are half-open; a source that records events on a coarse clock may not be: Starbucks'
    transcript (hours) has completions at exactly ``sent + 24 x duration`` hours (391 of 33,579), which a
    half-open window would count as failures.

    Columns ``customer_id, offer_id, offer_kind, decision_id, sent_at, valid_until, viewed, completed,
    completed_at``. A completion (or view) is credited to the latest send of the same offer to the same
    customer at or before it, and only within that send's validity. Informational offers cannot complete,
    so they are left out unless ``include_informational``; sends whose validity ends after the data are
    left out (their outcome is not known yet).
    """
    ev = frames.offer_events
    event = ev["event"].astype("str")
    sends = ev[(event == "sent").to_numpy()]
    if not include_informational:
        sends = sends[(sends["offer_kind"].astype("str") != "informational").to_numpy()]
    if sent_from is not None:
        sends = sends[sends["occurred_at"] >= to_cutoff(sent_from)]
    if sent_until is not None:
        sends = sends[sends["occurred_at"] < to_cutoff(sent_until)]
    sends = pd.DataFrame(
        {
            "customer_id": sends["customer_id"].astype("str"),
            "offer_id": sends["offer_id"].astype("str"),
            "offer_kind": sends["offer_kind"].astype("str"),
            "decision_id": sends["decision_id"].astype("str"),
            "sent_at": sends["occurred_at"],
            "valid_until": sends["occurred_at"] + pd.to_timedelta(sends["duration_days"], unit="D"),
            "send_id": sends["id"],
        }
    )
    last = _end(frames, end)
    sends = sends.iloc[:0] if last is None else sends[sends["valid_until"] <= last]
    sends = sends.sort_values(["sent_at", "send_id"], kind="stable", ignore_index=True)
    out = sends
    for what in ("viewed", "completed"):
        out = _credit(out, ev[(event == what).to_numpy()], what, closed_end=closed_end)
    return out.drop(columns=["send_id"]).reset_index(drop=True)


def _credit(
    sends: pd.DataFrame, events: pd.DataFrame, what: str, *, closed_end: bool = False
) -> pd.DataFrame:
    """Mark each send that an event of kind ``what`` falls to (latest send at or before it, in validity)."""
    hits = pd.DataFrame(
        {
            "customer_id": events["customer_id"].astype("str"),
            "offer_id": events["offer_id"].astype("str"),
            "at": events["occurred_at"],
        }
    ).sort_values("at", kind="stable", ignore_index=True)
    matched = pd.merge_asof(
        hits,
        sends[["customer_id", "offer_id", "sent_at", "valid_until", "send_id"]].sort_values(
            "sent_at", kind="stable"
        ),
        left_on="at",
        right_on="sent_at",
        by=["customer_id", "offer_id"],
        direction="backward",
        allow_exact_matches=True,
    )
    inside = matched["at"] <= matched["valid_until"] if closed_end else matched["at"] < matched["valid_until"]
    matched = matched[matched["send_id"].notna() & inside]
    earliest = matched.groupby(matched["send_id"].astype(np.int64))["at"].min()
    first = pd.DataFrame(
        {"send_id": earliest.index.to_numpy(), "at": earliest.to_numpy()}, columns=["send_id", "at"]
    )
    first["at"] = pd.to_datetime(first["at"], utc=True).dt.as_unit("us")
    out = sends.merge(first, on="send_id", how="left", validate="1:1")
    out[what] = out["at"].notna().to_numpy().astype(np.int64)
    if what == "completed":
        return out.rename(columns={"at": "completed_at"})
    return out.drop(columns=["at"])


def training_set(
    frames: LedgerFrames,
    cutoffs: Iterable[Cutoff],
    *,
    label: str = "churn",
    config: FeatureConfig | None = None,
    horizon_days: int = CHURN_HORIZON_DAYS,
    activity: Sequence[str] = CHURN_ACTIVITY,
    send_window_days: int = 7,
    include_informational: bool = False,
    end: Cutoff | None = None,
) -> pd.DataFrame:
    """Features as of each cutoff joined to their labels, stacked; keys ``customer_id, as_of``.

    ``label="churn"``: one row per customer known before the cutoff, with ``churned``.
    ``label="offer_response"``: one row per offer sent in ``[cutoff, cutoff + send_window_days)``, with the
    features as of that cutoff and the columns of ``offer_response_labels``; a send falling in two
    windows goes to the later cutoff, so no send is counted twice. A cutoff whose churn window is not
    complete in the data is an error here, rather than a silently smaller training set.
    """
    stamps = sorted({to_cutoff(c) for c in cutoffs})
    if not stamps:
        raise InvalidInput("training_set needs at least one cutoff", field="cutoffs")
    last = _end(frames, end)
    parts = []
    for i, cutoff in enumerate(stamps):
        features = compute_features(frames, cutoff, config)
        if label == "churn":
            stop = cutoff + pd.Timedelta(days=horizon_days)
            if last is None or stop > last:
                raise InvalidInput(
                    f"cutoff {cutoff.date()}: the {horizon_days}-day churn window ends {stop.date()}, after "
                    f"the data ({last.date() if last is not None else 'no transactions'})",
                    field="cutoffs",
                )
            labels = churn_labels(frames, cutoff, horizon_days=horizon_days, activity=activity, end=last)
            parts.append(features.merge(labels, on=["customer_id", "as_of"], how="inner", validate="1:1"))
        elif label == "offer_response":
            until = cutoff + pd.Timedelta(days=send_window_days)
            if i + 1 < len(stamps):
                until = min(until, stamps[i + 1])
            sends = offer_response_labels(
                frames,
                sent_from=cutoff,
                sent_until=until,
                include_informational=include_informational,
                end=last,
            )
            sends.insert(1, "as_of", cutoff)
            parts.append(features.merge(sends, on=["customer_id", "as_of"], how="inner", validate="1:m"))
        else:
            raise InvalidInput(f"label must be 'churn' or 'offer_response', got {label!r}", field="label")
    return pd.concat(parts, ignore_index=True)
