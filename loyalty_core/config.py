"""Settings read from the environment (prefix ``LOYALTY_``), with defaults that make a fresh checkout work."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = Path(__file__).resolve().parent / "default_rules.toml"
DEFAULT_VAR = REPO_ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR / 'loyalty.db'}",
        description="SQLAlchemy URL; a plain postgresql:// URL gets the psycopg driver.",
    )
    api_keys: str = Field(
        default="core:dev-core-key,marketing:dev-marketing-key,admin:dev-admin-key",
        description="Comma-separated scope:key pairs. The defaults are for the local demo only.",
    )
    rules: Path = Field(default=DEFAULT_RULES, description="Path of the earning-rules TOML file.")
    max_body_bytes: int = Field(default=64 * 1024, description="Larger request bodies are refused with 413.")
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
