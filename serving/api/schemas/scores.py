"""Bodies of the scoring route: churn probability, bonus multiplier and offer propensities per customer."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from serving.api.schemas.fields import CustomerId, Probability, Strict

MAX_SCORE_BATCH = 1000


class ScoreBody(Strict):
    customer_ids: list[CustomerId] = Field(
        min_length=1,
        max_length=MAX_SCORE_BATCH,
        description=f"1 to {MAX_SCORE_BATCH} customers, scored in one model call; answers keep this order.",
    )


class OfferPropensityOut(BaseModel):
    offer_id: str
    propensity: Probability = Field(description="P(the customer completes the offer if it is sent).")
    uplift: float | None = Field(
        default=None,
        description="How much sending it raises that probability (uplift model); null without an estimate.",
    )


class CustomerScoreOut(BaseModel):
    customer_id: str
    churn_probability: Probability
    bonus_multiplier: float = Field(description="The earning multiplier the budget's shadow price grants.")
    offers: list[OfferPropensityOut] = Field(description="Every active offer, most likely first.")
    known: bool = Field(
        description="False for a customer without a row in the online features (a new member): scored "
        "from an all-missing vector, i.e. like an average newcomer."
    )
    features_as_of: dt.datetime | None = None


class ScoreOut(BaseModel):
    scores: list[CustomerScoreOut]
    model_versions: dict[str, str]
    offers_absent: str | None = Field(
        default=None,
        description="Why every `offers` list is empty: no offer champion, so churn alone is served (a "
        "bank that only has transactions). null when the offer model scored the offers.",
    )
