"""The offers catalogue (marketing reads it, admin edits it) and activations (core switches one on)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from loyalty_core import journal, offers
from serving.deps import AdminCaller, CoreCaller, EngineDep, MarketingCaller, RulesDep, ScoringDep, SessionDep
from serving.schemas import ActivationBody, ActivationOut, OfferBody, OfferOut

router = APIRouter(prefix="/v1/offers", tags=["offers"])

OfferId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=list[OfferOut])
def list_offers(caller: MarketingCaller, session: SessionDep) -> list[OfferOut]:
    """Every offer of the catalogue, withdrawn ones included (``active: false``), by id."""
    return [OfferOut.model_validate(o) for o in offers.list_offers(session)]


@router.put("/{offer_id}", response_model=OfferOut)
def upsert_offer(
    caller: AdminCaller, offer_id: OfferId, body: OfferBody, engine: EngineDep, scoring: ScoringDep
) -> OfferOut:
    """Create or replace an offer; customers' existing activations keep pointing at it.

    This worker ranks with the new catalogue from the next request on; other workers at their next poll.
    """
    spec: dict[str, Any] = {"id": offer_id, **body.model_dump()}
    out = journal.in_transaction(engine, lambda s: OfferOut.model_validate(offers.upsert_offer(s, spec)))
    scoring.catalogue.reload()
    return out


@router.post("/{offer_id}/activate", response_model=ActivationOut)
def activate_offer(
    caller: CoreCaller, offer_id: OfferId, body: ActivationBody, engine: EngineDep, rules: RulesDep
) -> dict[str, Any]:
    """Switch an offer on for a customer: its multiplier or bonus then applies to their next earnings."""
    return journal.in_transaction(
        engine,
        lambda s: offers.activate_offer(
            s, offer_id=offer_id, customer_id=body.customer_id, decision_id=body.decision_id, rules=rules
        ),
    )
