"""Settings read from the environment (prefix ``LOYALTY_``), with defaults that make a fresh checkout work."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = Path(__file__).resolve().parent / "default_rules.toml"
DEFAULT_VAR = REPO_ROOT / "var"
DEFAULT_JOB_PARAMS = REPO_ROOT / "models" / "jobs" / "parameters.toml"


class Settings(BaseSettings):
    # populate_by_name: a field with an alias (mlflow_tracking_uri) can still be given by its name in code.
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR / 'loyalty.db'}",
        description="SQLAlchemy URL; a plain postgresql:// URL gets the psycopg driver.",
    )
    api_keys: str = Field(
        default="core:dev-core-key,marketing:dev-marketing-key,admin:dev-admin-key",
        description="Comma-separated scope:key pairs. The defaults are for the local demo only.",
    )
    rules: Path = Field(default=DEFAULT_RULES, description="Path of the earning-rules TOML file.")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        description="Larger request bodies are refused with 413. The default holds the largest valid body "
        "(a /v1/score batch of 1000 ids of 64 characters, each written as JSON escapes: about 770 kB); "
        "a lower limit refuses some valid requests.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's own OpenTelemetry spans, metrics and exception logs, for an operator who has "
        "configured an OpenTelemetry SDK. Off by default: with nothing configured it still asks for the "
        "providers on every request, about 5 % of a posting's HTTP handling. Prometheus metrics "
        "(GET /metrics) are always on.",
    )
    post_batch_max: int = Field(
        default=256,
        ge=1,
        description="Most postings the service commits in one database transaction (group commit).",
    )
    post_batch_linger_ms: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="Under concurrent load, how long a batch may wait for the rest of the previous round.",
    )
    post_concurrency: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Posting batches one service process keeps in the database at once (PostgreSQL; "
        "SQLite has one writer). More than one lets commits share a slow disk's flush when the CPU has "
        "room; on a busy CPU one batch at a time grows larger batches, which cost less per posting.",
    )
    model_poll_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often each worker asks the registry whether the champion alias moved "
        "(and re-reads the online features and the catalogue when they changed); 0 disables polling.",
    )
    model_load_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long start-up waits for the first model load before serving (degraded) anyway.",
    )
    policy: str = Field(
        default="epsilon_greedy",
        description="The served ranking policy: 'epsilon_greedy' (share LOYALTY_EXPLORATION_EPSILON), "
        "'epsilon_greedy:<share>', 'greedy', 'thompson' or 'thompson:beta'.",
    )
    exploration_epsilon: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Share of rankings that explore (epsilon-greedy); each choice logs its probability.",
    )
    cap_window_days: int = Field(
        default=30, ge=1, le=366, description="Frequency caps count the offers sent within this many days."
    )
    cap_per_customer: int = Field(
        default=4, ge=0, description="Most offers a customer gets within the window."
    )
    cap_per_channel: int = Field(default=2, ge=0, description="Most offers a customer gets in one channel.")
    cap_per_offer: int = Field(default=1, ge=0, description="How often the same offer may reach a customer.")
    multiplier_file: Path | None = Field(
        default=None,
        description="The bonus-multiplier rule `loyalty score` writes (default var/policy/multiplier.json); "
        "without it every multiplier step must pay for itself (no budget).",
    )
    shadow_policy: str = Field(
        default="thompson",
        description="Challenger run beside the champion on live rankings, logged but never served: "
        "'thompson', 'thompson:beta', 'greedy', 'epsilon_greedy:<share>', or 'none'.",
    )
    spark_master: str | None = Field(
        default=None,
        description="Spark master URL for the Spark feature engine (spark://host:7077, yarn...); "
        "unset runs Spark locally on every core.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        # MLflow's own variable, unprefixed: the MLflow CLI and UI read the same one.
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI"),
        description="MLflow tracking store (a server or a database URL); unset uses the repository's "
        "local store under mlflow/.",
    )
    job_params: Path = Field(
        default=DEFAULT_JOB_PARAMS,
        description="The TOML file of the training and scoring jobs' parameters; each run logs the values.",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
