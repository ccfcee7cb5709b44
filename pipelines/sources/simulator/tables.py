"""The tables a bank would have recorded, built from the drawn world as Arrow tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loyalty_core import CHANNELS, GENDERS, INCOME_BANDS, TXN_TYPES
from pipelines.sources.simulator.arrow import (
    MONEY,
    RATE,
    TIMESTAMP,
    id_array,
    money_array,
    name_array,
    time_array,
)
from pipelines.sources.simulator.campaigns import DecisionLog
from pipelines.sources.simulator.config import DAY, Array, Calendar
from pipelines.sources.simulator.population import Population
from pipelines.sources.simulator.world import CATALOGUE, CATEGORY_NAMES, REGIONS, Campaign

EVENTS = ("sent", "viewed", "activated", "completed")


TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("customer_id", pa.string()),
        ("occurred_at", TIMESTAMP),
        ("type", pa.string()),
        ("amount", MONEY),
        ("category", pa.string()),
        ("channel", pa.string()),
        ("currency", pa.string()),
        ("region", pa.string()),
    ]
)


def customers_table(cal: Calendar, pop: Population, ids: pa.Array) -> pa.Table:
    epoch_day = cal.start_epoch // DAY
    return pa.table(
        {
            "customer_id": ids,
            "joined_on": pa.array((epoch_day + pop.joined_day).astype(np.int32), pa.date32()),
            "birth_year": pa.array(pop.birth_year.astype(np.int16), pa.int16()),
            "gender": name_array(GENDERS, np.where(pop.female, 0, 1)),
            "region": name_array([r.name for r in REGIONS], pop.region),
            "income_band": name_array(INCOME_BANDS, pop.band),
            "income": money_array(np.rint(pop.income * 100).astype(np.int64)),
            "channel": name_array(CHANNELS, pop.pref),
        }
    )


def offers_table() -> pa.Table:
    def listed(values: tuple[str, ...] | None) -> list[str] | None:
        return list(values) if values is not None else None

    return pa.table(
        {
            "offer_id": pa.array([o.offer_id for o in CATALOGUE], pa.string()),
            "name": pa.array([o.name for o in CATALOGUE], pa.string()),
            "kind": pa.array([o.kind for o in CATALOGUE], pa.string()),
            "multiplier": pa.array([o.multiplier for o in CATALOGUE], RATE),
            "bonus_points": pa.array([o.bonus_points for o in CATALOGUE], pa.int32()),
            "threshold": pa.array([o.threshold for o in CATALOGUE], MONEY),
            "categories": pa.array([listed(o.categories) for o in CATALOGUE], pa.list_(pa.string())),
            "txn_types": pa.array([listed(o.txn_types) for o in CATALOGUE], pa.list_(pa.string())),
            "channels": pa.array([listed(o.channels) for o in CATALOGUE], pa.list_(pa.string())),
            "duration_days": pa.array([o.duration_days for o in CATALOGUE], pa.int32()),
            "cost": pa.array([o.cost for o in CATALOGUE], MONEY),
            "value": pa.array([o.value for o in CATALOGUE], MONEY),
            "min_tier": pa.array([o.min_tier for o in CATALOGUE], pa.string()),
        }
    )


def decision_ids(campaigns: list[Campaign], log: DecisionLog, customer_ids: pa.Array) -> pa.Array:
    names = [c.campaign_id for c in campaigns]
    return pc.binary_join_element_wise(
        name_array(names, log.campaign), customer_ids.take(pa.array(log.customer)), "-"
    )


def decisions_table(
    cal: Calendar,
    campaigns: list[Campaign],
    log: DecisionLog,
    ids: pa.Array,
    customer_ids: pa.Array,
    pop: Population,
) -> pa.Table:
    offer_ids = pa.array([o.offer_id for o in CATALOGUE], pa.string())
    table = pa.table(
        {
            "decision_id": ids,
            "customer_id": customer_ids.take(pa.array(log.customer)),
            "made_at": time_array(cal, log.made),
            "policy": name_array([c.policy for c in campaigns], log.campaign),
            "offer_id": pc.if_else(
                pa.array(log.offer >= 0),
                offer_ids.take(pa.array(np.maximum(log.offer, 0))),
                pa.scalar(None, pa.string()),
            ),
            "probability": pa.array(log.probability.astype(np.float64), pa.float64()),
            "channel": name_array(CHANNELS, pop.pref[log.customer]),
        }
    )
    return table.sort_by([("made_at", "ascending"), ("decision_id", "ascending")])


def events_table(
    cal: Calendar,
    log: DecisionLog,
    ids: pa.Array,
    customer_ids: pa.Array,
    pop: Population,
    completed: tuple[Array, Array],
) -> pa.Table:
    stages = [
        np.flatnonzero(log.sent >= 0),
        np.flatnonzero(log.viewed >= 0),
        np.flatnonzero(log.activated >= 0),
    ]
    dec = np.concatenate([*stages, completed[0]])
    code = np.concatenate([np.full(len(s), i) for i, s in enumerate([*stages, completed[0]])])
    at = np.concatenate([log.sent[stages[0]], log.viewed[stages[1]], log.activated[stages[2]], completed[1]])
    dec_ids = ids.take(pa.array(dec))
    table = pa.table(
        {
            "event_id": pc.binary_join_element_wise(dec_ids, name_array(EVENTS, code), ":"),
            "customer_id": customer_ids.take(pa.array(log.customer[dec])),
            "offer_id": name_array([o.offer_id for o in CATALOGUE], log.offer[dec]),
            "event": name_array(EVENTS, code),
            "occurred_at": time_array(cal, at),
            "channel": name_array(CHANNELS, pop.pref[log.customer[dec]]),
            "decision_id": dec_ids,
        }
    )
    return table.sort_by([("occurred_at", "ascending"), ("event_id", "ascending")])


def transactions_batch(cal: Calendar, rows: Array, first_id: int, customer_ids: pa.Array) -> pa.Table:
    n = len(rows)
    return pa.Table.from_arrays(
        [
            id_array("T", np.arange(first_id, first_id + n), 10),
            customer_ids.take(pa.array(rows["c"])),
            time_array(cal, rows["t"].astype(np.int64)),
            name_array(TXN_TYPES, rows["type"]),
            money_array(rows["cents"].astype(np.int64)),
            name_array(CATEGORY_NAMES, rows["cat"]),
            name_array(CHANNELS, rows["ch"]),
            pa.array(["RUB"]).take(pa.array(np.zeros(n, dtype=np.int64))),
            name_array([r.name for r in REGIONS], rows["reg"]),
        ],
        schema=TRANSACTIONS_SCHEMA,
    )
