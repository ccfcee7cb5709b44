"""Model inputs: the ONE place batch scoring, training and the service build model matrices, so a model never
sees columns in another order or computed another way than it was trained on.

A customer's feature vector is a row of the feature snapshot / online table, in ``pipelines``'
``FEATURE_NAMES`` order. Two models read it: the churn model (``churn``: the features plus BG/NBD columns
derived from the vector) and the offer model (``offers``: a row per (customer, offer) pair, with the offer's
attributes from ``offer_attributes`` and the pair features of ``offer_pairs``). ``frames`` checks the
training frames every model is fitted on. API, kept stable for ``serving`` and batch scoring::

    churn = ChurnInputs.for_scorer(churn_scorer, FEATURE_NAMES)
    churn.matrix(customer_matrix)                  # (n, len(churn.columns)) float64
    offers = OfferInputs.for_scorer(offer_scorer, catalogue, FEATURE_NAMES)
    offers.matrix(customer_matrix, offer_ids)  # (n * m, columns); row i*m + j: customer i, offer j
    offers.pairs(customer_matrix, rows, offer_ids)  # a row per (customer_matrix[rows[k]], offer_ids[k])
    offers.pairs_at(customer_matrix, rows, positions)  # the same with positions in offers.offer_ids

``catalogue`` is a DataFrame (the simulator's ``offers.parquet``, ``offer_id`` or ``id``) or records
(``loyalty_core.schema.Offer`` rows or dicts) with the fields of ``loyalty_core.offers.upsert_offer``.
"""

from models.inputs.churn import (
    BGNBD_COLUMNS,
    BGNBD_UNIT_DAYS,
    BgnbdParams,
    ChurnInputs,
    bgnbd_columns,
    bgnbd_history,
)
from models.inputs.frames import (
    CUSTOMER_KEYS,
    CUTOFF,
    OFFER_KEYS,
    FrameSpec,
    check_binary,
    check_features,
    cutoffs,
    describe_cutoff,
    feature_matrix,
    fingerprint,
    require_columns,
    split_out_of_time,
)
from models.inputs.offer_attributes import (
    ATTR_PREFIX,
    CATALOGUE_FIELDS,
    catalogue_frame,
    customer_offer_frame,
    offer_attributes,
    offer_table,
)
from models.inputs.offer_pairs import PAIR_COLUMNS, PairFeatures
from models.inputs.offers import OfferInputs

__all__ = [
    "ATTR_PREFIX",
    "BGNBD_COLUMNS",
    "BGNBD_UNIT_DAYS",
    "CATALOGUE_FIELDS",
    "CUSTOMER_KEYS",
    "CUTOFF",
    "OFFER_KEYS",
    "PAIR_COLUMNS",
    "BgnbdParams",
    "ChurnInputs",
    "FrameSpec",
    "OfferInputs",
    "PairFeatures",
    "bgnbd_columns",
    "bgnbd_history",
    "catalogue_frame",
    "check_binary",
    "check_features",
    "customer_offer_frame",
    "cutoffs",
    "describe_cutoff",
    "feature_matrix",
    "fingerprint",
    "offer_attributes",
    "offer_table",
    "require_columns",
    "split_out_of_time",
]
