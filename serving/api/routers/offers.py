"""The offers catalogue (marketing reads it, admin edits it) and activations (core switches one on)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

import loyalty_core
from loyalty_core import in_transaction
from serving.api.contract import ExactJSONRoute, write
from serving.api.deps import (
    AdminCaller,
    CoreCaller,
    EngineDep,
    MarketingCaller,
    RulesDep,
    ScoringDep,
    SessionDep,
)
from serving.api.schemas.fields import OfferId
from serving.api.schemas.offers import ActivationBody, ActivationOut, OfferBody, OfferOut

router = APIRouter(prefix="/v1/offers", tags=["offers"], route_class=ExactJSONRoute)

OfferIdPath = Annotated[OfferId, Path()]


@router.get("", response_model=list[OfferOut])
def list_offers(caller: MarketingCaller, session: SessionDep) -> list[OfferOut]:
    """Every offer of the catalogue, withdrawn ones included (``active: false``), by id."""
    return [OfferOut.model_validate(o) for o in loyalty_core.list_offers(session)]


@router.put("/{offer_id}", response_model=OfferOut)
def upsert_offer(
    caller: AdminCaller,
    offer_id: OfferIdPath,
    body: OfferBody,
    engine: EngineDep,
    scoring: ScoringDep,
    rules: RulesDep,
) -> OfferOut:
    """Create or replace an offer; customers' existing activations keep pointing at it.

    422 ``unknown_tier`` for a ``min_tier`` that is not one of the rules' tiers (it would otherwise match no
    tier and leave the offer open to everyone). This worker ranks with the new catalogue from the next
    request on; other workers at their next poll.
    """
    spec: dict[str, Any] = {"id": offer_id, **body.model_dump()}
    out = in_transaction(
        engine, lambda s: OfferOut.model_validate(loyalty_core.upsert_offer(s, spec, rules=rules))
    )
    scoring.catalogue.reload()
    return out


@router.post("/{offer_id}/activate", response_model=ActivationOut)
def activate_offer(
    caller: CoreCaller,
    offer_id: OfferIdPath,
    body: ActivationBody,
    engine: EngineDep,
    rules: RulesDep,
    response: Response,
) -> dict[str, Any]:
    """Switch an offer on for a customer: its multiplier or bonus then applies to their next earnings.

    Asking again while the activation runs answers it again (``Idempotent-Replayed: true``). A
    ``decision_id`` must name a served decision of this customer that proposed this offer: 404
    ``unknown_decision``, 409 ``decision_mismatch``, ``not_served`` or 422 ``not_offered`` otherwise, so the
    decision log that trains and evaluates policies never joins an outcome to a choice that was not made.
    """
    return write(
        engine,
        response,
        lambda s: loyalty_core.activate_offer(
            s, offer_id=offer_id, customer_id=body.customer_id, decision_id=body.decision_id, rules=rules
        ),
    )
