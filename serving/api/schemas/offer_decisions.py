"""Bodies of the decision routes: offer rankings, campaigns and feedback on what was proposed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from serving.api.schemas.fields import Channel, CustomerId, DecisionId, Money, OfferId, Probability, Strict

MAX_SLATE = 10
MAX_CAMPAIGN = 100_000


class FeedbackBody(Strict):
    decision_id: DecisionId
    offer_id: OfferId
    event: Literal["shown", "viewed", "accepted", "completed"]


class FeedbackOut(BaseModel):
    decision_id: str
    offer_id: str
    customer_id: str
    event: str
    recorded_at: dt.datetime = Field(description="When this event was first recorded (a replay keeps it).")
    replayed: bool


class RankBody(Strict):
    customer_id: CustomerId
    k: Annotated[int, Field(strict=True, ge=1, le=MAX_SLATE)] = Field(
        default=1, description="Offers wanted; fewer come back when fewer are eligible or the caps are near."
    )
    channel: Channel | None = Field(default=None, description="Where the offers will be shown (app, web...).")


class ReasonOut(BaseModel):
    feature: str
    phrase: str
    contribution: float = Field(description="The feature's share of the score, in log-odds (TreeSHAP).")
    value: float | None


class RankedOfferOut(BaseModel):
    offer_id: str
    rank: int
    score: Probability = Field(description="P(completion | offer sent), the offer model's calibrated score.")
    expected_value: float = Field(
        description="Expected incremental value in RUB: uplift x value - p x cost, or p x (value - cost) "
        "where no uplift estimate exists (see source)."
    )
    probability: Probability = Field(description="The chance the policy had of choosing this offer.")
    source: Literal["uplift", "propensity"]
    reasons: list[ReasonOut] = Field(description="Features that raised this offer's score the most.")


class RankOut(BaseModel):
    decision_id: str = Field(description="Send it back with feedback and activations of these offers.")
    customer_id: str
    policy: str
    offers: list[RankedOfferOut]
    model_versions: dict[str, str]
    known: bool
    features_as_of: dt.datetime | None = None


class CampaignBody(Strict):
    offer_id: OfferId
    budget: Money | None = Field(
        default=None, description="Most expected cost (RUB, completions x the offer's cost) to spend."
    )
    limit: Annotated[int, Field(strict=True, ge=1, le=MAX_CAMPAIGN)] = Field(
        default=1000, description="Most customers to target."
    )
    channel: Channel | None = Field(default=None, description="The campaign's channel (for the caps).")
    rank_by: Literal["value", "value_per_cost"] = "value"


class CampaignCustomerOut(BaseModel):
    rank: int
    customer_id: str
    decision_id: str
    p_complete: Probability
    expected_value: float
    expected_cost: float
    cumulative_cost: float
    source: Literal["uplift", "propensity"]


class CampaignOut(BaseModel):
    campaign_id: str = Field(description="Also the decisions' policy, as campaign:<campaign_id>.")
    offer_id: str
    customers: list[CampaignCustomerOut]
    considered: int = Field(description="Customers in the online features.")
    eligible: int = Field(
        description="Of those, customers the offer may be sent to (caps, tier, activations)."
    )
    expected_value: float = Field(description="Sum over the targeted customers, RUB.")
    expected_cost: float
    model_versions: dict[str, str]
