"""The model registry at MLflow's edge: where the store lives, what a run records, the one promotion
mechanism of every model, the scorers the service loads, and the pyfunc entry points logged with them."""

from models.registry.card import model_card, uplift_card
from models.registry.champions import (
    CHALLENGER,
    CHAMPION,
    Champion,
    aliased_version,
    downloaded,
    find_scorer_dir,
    load_champion,
)
from models.registry.promotion import (
    PROMOTION_TAG,
    ChampionCheck,
    Promotion,
    check_champion,
    decide_promotion,
    decide_uplift_promotion,
    promote_version,
    record_promotion,
)
from models.registry.store import (
    artifact_root,
    default_tracking_uri,
    registry_client,
    resolve_tracking_uri,
    use_store,
)
from models.registry.tracking import RunReport, challenger_model, load_card, log_training
from models.registry.uplift_model import load_uplift, log_uplift, promote_uplift
from models.registry.uplift_scorers import (
    ARMS,
    TARGET,
    UPLIFT_MODEL,
    Holdout,
    UpliftReport,
    UpliftScorers,
    scorers_of,
)

__all__ = [
    "ARMS",
    "CHALLENGER",
    "CHAMPION",
    "PROMOTION_TAG",
    "TARGET",
    "UPLIFT_MODEL",
    "Champion",
    "ChampionCheck",
    "Holdout",
    "Promotion",
    "RunReport",
    "UpliftReport",
    "UpliftScorers",
    "aliased_version",
    "artifact_root",
    "challenger_model",
    "check_champion",
    "decide_promotion",
    "decide_uplift_promotion",
    "default_tracking_uri",
    "downloaded",
    "find_scorer_dir",
    "load_card",
    "load_champion",
    "load_uplift",
    "log_training",
    "log_uplift",
    "model_card",
    "promote_uplift",
    "promote_version",
    "record_promotion",
    "registry_client",
    "resolve_tracking_uri",
    "scorers_of",
    "uplift_card",
    "use_store",
]
