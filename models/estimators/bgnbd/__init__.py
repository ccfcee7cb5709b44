"""The BG/NBD customer-base model (Fader, Hardie & Lee 2005): who is still buying, and how much next?

``history`` summarises a transaction log into (frequency, recency, T); ``formulas`` holds the model's
closed forms as pure functions of the four parameters (the derivations are in its docstring); ``estimator``
fits them by maximum likelihood as a scikit-learn estimator; ``simulate`` draws histories from the model's
own story; ``checks`` validates what all of them take.
"""

from models.estimators.bgnbd.checks import PARAM_NAMES, RFM_COLUMNS
from models.estimators.bgnbd.estimator import BetaGeoNBD
from models.estimators.bgnbd.formulas import (
    conditional_expected_purchases,
    customer_outlook,
    expected_purchases_new_customer,
    log_likelihood,
    probability_alive,
    probability_no_purchase,
)
from models.estimators.bgnbd.history import summarise
from models.estimators.bgnbd.simulate import simulate_bgnbd

__all__ = [
    "PARAM_NAMES",
    "RFM_COLUMNS",
    "BetaGeoNBD",
    "conditional_expected_purchases",
    "customer_outlook",
    "expected_purchases_new_customer",
    "log_likelihood",
    "probability_alive",
    "probability_no_purchase",
    "simulate_bgnbd",
    "summarise",
]
