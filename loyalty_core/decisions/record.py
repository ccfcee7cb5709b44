"""The decision record: the one shape of a ``decisions`` row, its shadow naming, and its insert.

Every choice the service makes (a ranking, a campaign's target) is stored with the probability it had of
being made, so the next training run and any off-policy evaluation read what was decided next to what
happened. The record also keeps the ranking's context in typed columns: ``k`` (the slate size asked for),
``candidates`` (every candidate offer's ``[probability of being chosen, model score]``, shown or not) and,
for a shadow policy's choice, ``shadow_of`` (the served decision it ranked beside). That context is what
lets another policy be judged on the log before anyone promotes it.

The ranking types live in ``models.policy``; this module only needs their shape (``RankingLike``), so the
ledger package still imports nothing of ours above it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from loyalty_core.errors import InvalidInput
from loyalty_core.schema import Decision

DECISIONS = cast(Table, Decision.__table__)
SHADOW_PREFIX = "shadow:"
SHADOW_SUFFIX = ".shadow"
ID_MAX = 64  # decisions.id and decisions.policy are String(64)
CONTEXT_PLACES = 6  # candidates' probabilities and scores are rounded: the log is for estimates, not replays


def shadow_id(decision_id: str) -> str:
    """The id of the shadow decision ranked beside the served decision ``decision_id``."""
    return f"{decision_id}{SHADOW_SUFFIX}"


def shadow_policy(policy: str) -> str:
    """The logged policy name of a challenger ranking in shadow mode (``shadow_pairs`` selects on it)."""
    return f"{SHADOW_PREFIX}{policy}"


class SlateOffer(Protocol):
    """What the record needs of one offer of a ranking (``models.policy.RankedOffer``)."""

    @property
    def offer_id(self) -> str: ...

    @property
    def probability(self) -> float: ...

    def to_dict(self) -> dict[str, Any]: ...


class RankingLike(Protocol):
    """What the record needs of a ranking (``models.policy.Ranking``)."""

    @property
    def offers(self) -> Sequence[SlateOffer]: ...

    @property
    def policy(self) -> str: ...

    @property
    def probability_method(self) -> str: ...

    @property
    def probabilities(self) -> Mapping[str, float]: ...


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision as the service stores it in ``decisions`` (see ``loyalty_core.schema.Decision``).

    ``offer_id``/``probability`` of the row are the first offer of the slate and its probability; an empty
    slate is a decision too (``offer_id`` None, probability 1: nothing else could have happened given the
    eligibility), so "no offer" outcomes stay in the log that off-policy evaluation reads.
    """

    decision_id: str
    customer_id: str
    made_at: dt.datetime
    policy: str
    offers: tuple[Mapping[str, Any], ...]
    probability_method: str = "exact"
    channel: str | None = None
    model_versions: Mapping[str, str] = field(default_factory=dict)
    served: bool = True
    k: int | None = None
    candidates: Mapping[str, list[float]] | None = None
    shadow_of: str | None = None

    def __post_init__(self) -> None:
        if self.made_at.tzinfo is None:
            raise InvalidInput("made_at must be timezone-aware (UTC)", field="made_at")
        if not self.decision_id or len(self.decision_id) > ID_MAX:
            raise InvalidInput(f"decision_id must be 1 to {ID_MAX} characters", field="decision_id")
        if len(self.policy) > ID_MAX:
            raise InvalidInput(f"policy name must be at most {ID_MAX} characters", field="policy")

    @classmethod
    def from_ranking(
        cls,
        ranking: RankingLike,
        *,
        customer_id: str,
        made_at: dt.datetime,
        channel: str | None = None,
        model_versions: Mapping[str, str] | None = None,
        decision_id: str | None = None,
        policy: str | None = None,
        served: bool = True,
        k: int | None = None,
        scores: Mapping[str, float] | None = None,
        shadow_of: str | None = None,
    ) -> DecisionRecord:
        """The record of a ranking; with ``scores`` (model score by offer id) it keeps every candidate's
        probability and score, which is what evaluating another policy on this decision needs."""
        candidates = (
            None
            if scores is None
            else {
                oid: [round(p, CONTEXT_PLACES), round(scores[oid], CONTEXT_PLACES)]
                for oid, p in ranking.probabilities.items()
            }
        )
        return cls(
            decision_id=decision_id or uuid.uuid4().hex,
            customer_id=customer_id,
            made_at=made_at,
            policy=policy or ranking.policy,
            offers=tuple(o.to_dict() for o in ranking.offers),
            probability_method=ranking.probability_method,
            channel=channel,
            model_versions=dict(model_versions or {}),
            served=served,
            k=k,
            candidates=candidates,
            shadow_of=shadow_of,
        )

    def shadow(self, ranking: RankingLike, *, scores: Mapping[str, float] | None = None) -> DecisionRecord:
        """A challenger's ranking of the same request, logged beside this served decision and never served."""
        return DecisionRecord.from_ranking(
            ranking,
            customer_id=self.customer_id,
            made_at=self.made_at,
            channel=self.channel,
            model_versions=self.model_versions,
            decision_id=shadow_id(self.decision_id),
            policy=shadow_policy(ranking.policy),
            served=False,
            k=self.k,
            scores=scores,
            shadow_of=self.decision_id,
        )

    def to_row(self) -> dict[str, Any]:
        """The ``decisions`` row; ``model_versions`` also records how the probabilities were computed."""
        first = self.offers[0] if self.offers else None
        return {
            "id": self.decision_id,
            "customer_id": self.customer_id,
            "made_at": self.made_at,
            "policy": self.policy,
            "offer_id": first["offer_id"] if first else None,
            "probability": first["probability"] if first else 1.0,
            "served": self.served,
            "channel": self.channel,
            "offers": [dict(o) for o in self.offers],
            "model_versions": {**self.model_versions, "probability_method": self.probability_method},
            "k": self.k,
            "candidates": None if self.candidates is None else dict(self.candidates),
            "shadow_of": self.shadow_of,
        }


def decision_rows(rows: Sequence[DecisionRecord | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records, or rows already in the table's shape (importers' campaign logs), as checked table rows.

    Rows may leave out the context columns (``k``, ``candidates``, ``shadow_of``): they are NULL then.
    """
    values = [r.to_row() if isinstance(r, DecisionRecord) else dict(r) for r in rows]
    for row in values:
        p = row["probability"]
        if not 0.0 <= float(p) <= 1.0:
            raise InvalidInput(f"decision {row['id']}: probability {p} is not in [0, 1]", field="probability")
        for name in ("k", "candidates", "shadow_of"):
            row.setdefault(name, None)
    return values


def record_decisions(session: Session, rows: Sequence[DecisionRecord | Mapping[str, Any]]) -> None:
    """Insert decisions at once (the service's rankings and campaigns; importers use ``import_decisions``)."""
    values = decision_rows(rows)
    if values:
        session.execute(insert(DECISIONS), values)
