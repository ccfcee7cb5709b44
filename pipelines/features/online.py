"""The online store: the latest feature vector per customer, for serving.

The ``online_features`` table keeps, per customer, the vector of their latest snapshot (see
``loyalty_core.schema.OnlineFeature``); writing an older snapshot never overwrites a newer row.
``OnlineFeatures`` loads the table into one float64 matrix plus a dict from customer id to row, so a lookup
is a dict probe and a row view (well under a microsecond), and ``refresh()`` re-reads it only when a
refresh has happened since (one indexed ``max(written_at)``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from loyalty_core import InvalidInput, OnlineFeature, utcnow
from pipelines.features.catalogue import FEATURE_NAMES
from pipelines.features.config import current_feature_version
from pipelines.features.cutoff import single_as_of

log = logging.getLogger(__name__)


ONLINE = cast(Table, OnlineFeature.__table__)
ROWS_PER_STATEMENT = 2000


def _upsert(engine: Engine) -> Any:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(ONLINE)
    return stmt.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={c: stmt.excluded[c] for c in ("as_of", "feature_version", "vector", "written_at")},
        where=ONLINE.c.as_of <= stmt.excluded.as_of,
    )


def feature_matrix(features: pd.DataFrame, names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """The features in catalogue order as a C-contiguous float64 matrix (int codes are exact in float64)."""
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise InvalidInput(f"features lack column(s) {', '.join(missing[:5])}", field="features")
    return np.ascontiguousarray(features[list(names)].to_numpy(dtype=np.float64))


def refresh_online(
    engine: Engine,
    features: pd.DataFrame,
    *,
    version: str | None = None,
    names: Sequence[str] = FEATURE_NAMES,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Upsert one snapshot into ``online_features``; rows of a newer as_of stay. Returns rows sent."""
    version = version if version is not None else current_feature_version()
    as_of = single_as_of(features).to_pydatetime()
    matrix = feature_matrix(features, names).astype("<f8", copy=False)
    ids = features["customer_id"].astype("str").to_numpy()
    now = utcnow()
    stmt = _upsert(engine)
    with engine.begin() as conn:
        for start in range(0, len(ids), ROWS_PER_STATEMENT):
            stop = min(start + ROWS_PER_STATEMENT, len(ids))
            conn.execute(
                stmt,
                [
                    {
                        "customer_id": str(ids[i]),
                        "as_of": as_of,
                        "feature_version": version,
                        "vector": matrix[i].tobytes(),
                        "written_at": now,
                    }
                    for i in range(start, stop)
                ],
            )
            if progress is not None:
                progress(stop - start)
    log.info("online features: %d rows as of %s (version %s)", len(ids), as_of, version)
    return len(ids)


class OnlineFeatures:
    """The online table in memory: ``get(customer_id)`` answers from a dict and a matrix, no database.

    Only rows of ``version`` are loaded (default: the catalogue of the rules in force, ``LOYALTY_RULES``;
    rules with other tier names give another version,
    ``feature_version(FeatureConfig.from_rules(rules).catalogue)``);
    a customer whose latest row follows another catalogue is unknown until a snapshot of this one is
    written. Thread-safe: a
    refresh builds the new matrix and index aside and swaps them in one assignment.
    """

    def __init__(self, engine: Engine, *, version: str | None = None, names: Sequence[str] = FEATURE_NAMES):
        self.engine = engine
        self.version = version if version is not None else current_feature_version()
        self.names: tuple[str, ...] = tuple(names)
        self._state: tuple[np.ndarray, dict[str, int], dict[str, dt.datetime]] = (
            np.empty((0, len(self.names))),
            {},
            {},
        )
        self._stamp: Any = None
        self._lock = threading.Lock()
        self.loaded_at: dt.datetime | None = None

    def _current_stamp(self) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(ONLINE.c.written_at))).scalar()

    def load(self) -> OnlineFeatures:
        """Read every row of this version; returns self so ``OnlineFeatures(engine).load()`` reads well."""
        with self._lock:
            stamp = self._current_stamp()
            width = len(self.names) * 8
            ids: list[str] = []
            blobs: list[bytes] = []
            as_of: dict[str, dt.datetime] = {}
            q = select(ONLINE.c.customer_id, ONLINE.c.vector, ONLINE.c.as_of).where(
                ONLINE.c.feature_version == self.version
            )
            with self.engine.connect() as conn:
                for cid, blob, when in conn.execute(q):
                    if len(blob) != width:
                        raise InvalidInput(
                            f"online row of {cid!r} has {len(blob) // 8} values, version {self.version} has "
                            f"{len(self.names)}",
                            field="vector",
                        )
                    ids.append(cid)
                    blobs.append(bytes(blob))
                    as_of[cid] = when
            matrix = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(ids), len(self.names))
            matrix.flags.writeable = False
            self._state = (matrix, {cid: i for i, cid in enumerate(ids)}, as_of)
            self._stamp = stamp
            self.loaded_at = utcnow()
        log.info("online features loaded: %d customers (version %s)", len(ids), self.version)
        return self

    def refresh(self) -> bool:
        """Re-read the table when a refresh wrote to it since the last load; True when it did."""
        if self._current_stamp() == self._stamp and self.loaded_at is not None:
            return False
        self.load()
        return True

    def get(self, customer_id: str) -> np.ndarray | None:
        """The customer's feature vector (read-only, catalogue order), or None when they have none."""
        matrix, index, _ = self._state
        row = index.get(customer_id)
        return None if row is None else matrix[row]

    def get_many(self, customer_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(matrix with a row per id, NaN rows for unknown ids; boolean mask of the known ones)."""
        matrix, index, _ = self._state
        rows = np.array([index.get(c, -1) for c in customer_ids], dtype=np.int64)
        known = rows >= 0
        out = np.full((len(rows), len(self.names)), np.nan)
        out[known] = matrix[rows[known]]
        return out, known

    def as_of(self, customer_id: str) -> dt.datetime | None:
        return self._state[2].get(customer_id)

    def __len__(self) -> int:
        return len(self._state[1])

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._state[1]
