"""Shadow mode: a challenger policy ranks beside the champion on live requests; only the champion is served.

Both rankings are logged (``loyalty_core.DecisionRecord`` and its ``shadow``: the champion's with
``served = true``, the challenger's with ``served = false``, policy ``shadow:<name>``, id
``<champion id>.shadow`` and ``shadow_of`` naming the champion's). Each row also keeps the ranking's context:
``k`` and ``candidates``, every candidate offer's ``[probability of being chosen, model score]``, shown or
not. That is what lets the challenger be judged before anyone promotes it:

- agreement: how often both chose the same first offer (or both chose none);
- off-policy value (``models.ope``): the reward is the champion's first offer's completion x (value - cost)
  (``models.ope.expected_reward``), the logging probability the champion's, the target probability the
  challenger's for the same offer in the same context; the reward model of the doubly robust estimate is
  ``score x (value - cost)`` from the scores both policies saw.

That reward is the gross margin: it credits completions that would have happened without the offer. What a
policy causes needs a control arm, which live decisions do not keep; the report says so (``reward``), and the
incremental judgement is made on randomised campaigns (``models.evaluation.incremental``).

Slates of more than one offer are left out of the estimates: their logged probabilities are inclusion
probabilities, not the probability of the first offer, so the estimators' weights would be wrong.
Decisions too young for their completions to be known count as "not completed", which pulls every value
down alike (the champion's logged value and the challenger's estimates), so compare them with each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from loyalty_core import InvalidInput
from models import Estimate, doubly_robust, ips, offer_log, snips

REWARD = (
    "gross margin: completion x (value - cost) of the first offer; live decisions keep no control arm, so "
    "what either policy causes (value caused minus every reward paid) is judged on randomised campaigns "
    "(models.evaluation.incremental, notebook 05), not here"
)


def _estimate(e: Estimate) -> dict[str, Any]:
    lo, hi = e.ci95
    return {
        "value": e.value,
        "se": e.se if math.isfinite(e.se) else 0.0,
        "ci95": (lo if math.isfinite(lo) else e.value, hi if math.isfinite(hi) else e.value),
        "n": e.n,
        "ess": e.ess,
        "clipped": e.clipped,
        "max_weight": e.max_weight,
    }


def shadow_report(
    shadows: Sequence[Mapping[str, Any]],
    served: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    offers: pd.DataFrame,
    *,
    champion: str,
    challenger: str | None,
) -> dict[str, Any]:
    """Agreement and off-policy estimates from the rows ``loyalty_core.decisions.shadow_pairs`` reads.

    ``offers`` is the catalogue (``offer_id`` or ``id``, ``value``, ``cost``), withdrawn offers included.
    """
    by_id = {str(r["id"]): r for r in served}
    pairs = []
    for s in shadows:
        twin = by_id.get(str(s.get("shadow_of")))
        if twin is not None:
            pairs.append((s, twin))
    report: dict[str, Any] = {
        "champion": champion,
        "challenger": challenger,
        "decisions": len(pairs),
        "agreement_rate": None,
        "completed": 0,
        "logged_value": None,
        "estimates": {},
        "reward": REWARD,
        "note": None,
    }
    if not pairs:
        report["note"] = "no shadow decisions logged yet"
        return report
    report["agreement_rate"] = float(np.mean([s["offer_id"] == c["offer_id"] for s, c in pairs]))

    cat = offers.rename(columns={"id": "offer_id"}) if "offer_id" not in offers.columns else offers
    known = set(cat["offer_id"].astype(str))
    single = [
        (s, c)
        for s, c in pairs
        if (1 if s.get("k") is None else int(s["k"])) == 1
        and (c["offer_id"] is None or c["offer_id"] in known)
    ]
    left_out = len(pairs) - len(single)
    notes = (
        [f"{left_out} decision(s) with slates of several offers left out of the estimates"]
        if left_out
        else []
    )
    if not single:
        report["note"] = "; ".join([*notes, "no single-offer decision to evaluate"])
        return report
    log = offer_log(
        pd.DataFrame(
            {
                "decision_id": [str(c["id"]) for _, c in single],
                "customer_id": [str(c["customer_id"]) for _, c in single],
                "made_at": [c["made_at"] for _, c in single],
                "offer_id": [c["offer_id"] for _, c in single],
                "probability": [float(c["probability"]) for _, c in single],
            }
        ),
        pd.DataFrame(list(events), columns=["decision_id", "offer_id", "event"]),
        cat[["offer_id", "value", "cost"]],
    )
    margin = dict(zip(log.offer_ids, (log.value - log.cost).tolist(), strict=True))
    target = np.zeros(len(single))
    q_logged = np.zeros(len(single))
    q_target = np.zeros(len(single))
    for i, (s, c) in enumerate(single):
        cands: dict[str, list[float]] = s.get("candidates") or {}
        action = c["offer_id"]
        if action is None:
            target[i] = 0.0 if cands else 1.0
        else:
            prob_score = cands.get(action)
            target[i] = float(prob_score[0]) if prob_score else 0.0
            score = float(prob_score[1]) if prob_score else _slate_score(c, action)
            q_logged[i] = score * margin.get(action, 0.0)
        q_target[i] = sum(float(p) * float(sc) * margin.get(oid, 0.0) for oid, (p, sc) in cands.items())
    target = np.clip(target, 0.0, 1.0)
    report["completed"] = int(log.completed.sum())
    report["logged_value"] = float(log.reward.mean())
    estimates: dict[str, Any] = {}
    for name, fn in (("ips", ips), ("snips", snips)):
        try:
            estimates[name] = _estimate(fn(log.reward, log.logged_prob, target))
        except InvalidInput as exc:
            notes.append(f"{name}: {exc.message}")
    estimates["dr"] = _estimate(
        doubly_robust(log.reward, log.logged_prob, target, q_logged=q_logged, q_target=q_target)
    )
    report["estimates"] = estimates
    report["note"] = "; ".join(notes) or None
    return report


def _slate_score(decision: Mapping[str, Any], offer_id: str) -> float:
    for o in decision.get("offers") or ():
        if o.get("offer_id") == offer_id:
            return float(o.get("score") or 0.0)
    return 0.0
