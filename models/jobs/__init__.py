"""The training and scoring jobs: pure steps (``*_steps``, ``churn_cutoffs``) and thin wiring that reads the
ledger, calls them, logs to MLflow and promotes, with parameters from ``models/jobs/parameters.toml``."""

from models.jobs.churn import ChurnReport, train_churn
from models.jobs.churn_cutoffs import choose_as_of, churn_cutoffs, latest_complete_as_of
from models.jobs.churn_steps import churn_frame, classic_bgnbd_scores
from models.jobs.common import LedgerSpan, Progress, ResultWithMeta, parse_date
from models.jobs.offer_steps import (
    CandidateScore,
    OfferChoice,
    choose_candidate,
    first_cutoff_with_history,
    offer_training_frame,
    send_cutoffs,
)
from models.jobs.offers import OfferReport, train_offers
from models.jobs.params import (
    DEFAULT_PARAMETERS,
    ChurnParams,
    JobParams,
    OfferCandidate,
    OfferParams,
    ScoringParams,
    UpliftParams,
    job_params_in_use,
    load_job_params,
)
from models.jobs.reads import ledger_span, read_catalogue
from models.jobs.requests import ChurnRequest, OfferRequest, Registration, ScoreRequest
from models.jobs.scoring import MULTIPLIER_FILE, ScoreReport, load_models, score_all
from models.jobs.scoring_steps import ScoringModels, customer_value, score_matrix
from models.jobs.uplift import UpliftInputs, train_uplift
from models.jobs.uplift_steps import fit_uplift, uplift_frame

__all__ = [
    "DEFAULT_PARAMETERS",
    "MULTIPLIER_FILE",
    "CandidateScore",
    "ChurnParams",
    "ChurnReport",
    "ChurnRequest",
    "JobParams",
    "LedgerSpan",
    "OfferCandidate",
    "OfferChoice",
    "OfferParams",
    "OfferReport",
    "OfferRequest",
    "Progress",
    "Registration",
    "ResultWithMeta",
    "ScoreReport",
    "ScoreRequest",
    "ScoringModels",
    "ScoringParams",
    "UpliftInputs",
    "UpliftParams",
    "choose_as_of",
    "choose_candidate",
    "churn_cutoffs",
    "churn_frame",
    "classic_bgnbd_scores",
    "customer_value",
    "first_cutoff_with_history",
    "fit_uplift",
    "job_params_in_use",
    "latest_complete_as_of",
    "ledger_span",
    "load_job_params",
    "load_models",
    "offer_training_frame",
    "parse_date",
    "read_catalogue",
    "score_all",
    "score_matrix",
    "send_cutoffs",
    "train_churn",
    "train_offers",
    "train_uplift",
    "uplift_frame",
]
