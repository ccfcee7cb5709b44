"""Bodies of the operators' routes: reviews of held postings, health, model reloads and shadow reports."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field


class ReviewOut(BaseModel):
    transaction_id: str
    customer_id: str
    status: Literal["released", "rejected"]
    points: int
    balance: int


class RedemptionReviewOut(BaseModel):
    redemption_id: str
    customer_id: str
    status: Literal["released", "rejected"]
    points: int = Field(description="The redemption's points: spent on release, freed on rejection.")
    balance: int


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    models: dict[str, Any] = Field(
        description="Each slot (churn, offers, uplift, features, catalogue, multiplier): its status (ok, "
        "degraded, or absent: an optional part that does not exist, with the reason in `error`) and the "
        "version served."
    )
    serves: list[str] = Field(
        description="What the scoring routes answer now: `churn` (POST /v1/score), `offers` (ranking, "
        "campaigns, the offers of /v1/score), `uplift`. A bank without an offer champion serves churn alone.",
    )


class SlotStatusOut(BaseModel):
    status: Literal["ok", "degraded", "absent"] = Field(
        description="absent: an optional part that does not exist (uplift or offer champion, offers "
        "catalogue); `error` says why."
    )
    version: str | None
    loaded_at: dt.datetime | None
    error: str | None


class ReloadOut(BaseModel):
    status: Literal["ok", "degraded"]
    models: dict[str, SlotStatusOut]


class EstimateOut(BaseModel):
    value: float = Field(description="Estimated mean reward per decision (RUB) had the challenger served.")
    se: float
    ci95: tuple[float, float]
    n: int
    ess: float = Field(description="Effective sample size of the importance weights.")
    clipped: int
    max_weight: float


class ShadowOut(BaseModel):
    champion: str = Field(description="The served policy.")
    challenger: str | None = Field(description="The shadow policy (null when shadow mode is off).")
    decisions: int = Field(description="Served decisions with a shadow decision beside them.")
    agreement_rate: float | None = Field(description="Share of them where both chose the same first offer.")
    completed: int = Field(description="Of those, decisions whose first offer was completed.")
    logged_value: float | None = Field(
        description="Mean reward per decision the champion actually got (RUB)."
    )
    estimates: dict[str, EstimateOut] = Field(
        description="Off-policy estimates of the challenger's mean reward per decision (ips, snips, dr)."
    )
    reward: str = Field(
        description="What the reward is: the gross margin, completion x (value - cost). Live decisions keep "
        "no control arm, so what either policy causes is judged on randomised campaigns instead "
        "(models.evaluation.incremental)."
    )
    note: str | None = None
