"""The decision policy: which offers a customer may get, what each is worth, which to show, how sure we were.

Everything here is a pure function of numbers the caller gathered (model scores, the catalogue, the customer's
tier, activations and recent contacts); the service and the batch scorer do the I/O. Two shapes of the same
logic:

- one customer per request (``eligibility_one`` + ``rank_offers``, or ``rank_for_customer``): plain Python
  over the catalogue's ~10 offers (a numpy call costs more than the whole loop at that size), no DataFrame,
  so a ranking costs 15-20 microseconds (``benchmarks/policy.py``);
- many customers for a campaign or a batch score (``contact_counts``, ``eligibility_matrix``,
  ``expected_value`` on ``(customers, offers)`` matrices, ``allocate_campaign``, ``allocate_multipliers``).

Modules: ``catalog`` (the offers as aligned arrays), ``eligibility`` (exclusion rules and frequency caps),
``value`` (expected incremental value), ``exploration`` (epsilon-greedy, Thompson sampling), ``ranking``
(one customer's slate with its probabilities), ``campaigns`` (one offer, many customers, a budget),
``multipliers`` (bonus multipliers within a points budget). A ranking becomes a logged decision through
``loyalty_core.DecisionRecord.from_ranking``: the ledger package owns the decision record.
"""

from models.policy.campaigns import allocate_campaign
from models.policy.catalog import DEFAULT_TIERS, OfferCatalog
from models.policy.eligibility import (
    DEFAULT_CAPS,
    EXCLUSION_NAMES,
    NO_CAPS,
    Contact,
    ContactCounts,
    CustomerState,
    Exclusion,
    FrequencyCaps,
    active_matrix,
    contact_counts,
    eligibility_matrix,
    eligibility_one,
)
from models.policy.exploration import GREEDY, EpsilonGreedy, Exploration, ThompsonSampling, thompson_slate
from models.policy.multipliers import (
    MultiplierAllocation,
    MultiplierPolicy,
    allocate_multipliers,
    hull_steps,
    multiplier_for,
    multiplier_inputs,
)
from models.policy.ranking import RankedOffer, Ranking, rank_for_customer, rank_offers
from models.policy.value import SOURCE_PROPENSITY, SOURCE_UPLIFT, expected_value

__all__ = [
    "DEFAULT_CAPS",
    "DEFAULT_TIERS",
    "EXCLUSION_NAMES",
    "GREEDY",
    "NO_CAPS",
    "SOURCE_PROPENSITY",
    "SOURCE_UPLIFT",
    "Contact",
    "ContactCounts",
    "CustomerState",
    "EpsilonGreedy",
    "Exclusion",
    "Exploration",
    "FrequencyCaps",
    "MultiplierAllocation",
    "MultiplierPolicy",
    "OfferCatalog",
    "RankedOffer",
    "Ranking",
    "ThompsonSampling",
    "active_matrix",
    "allocate_campaign",
    "allocate_multipliers",
    "contact_counts",
    "eligibility_matrix",
    "eligibility_one",
    "expected_value",
    "hull_steps",
    "multiplier_for",
    "multiplier_inputs",
    "rank_for_customer",
    "rank_offers",
    "thompson_slate",
]
