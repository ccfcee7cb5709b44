"""What the features need of the earning rules, and the catalogue of the rules actually in force.

The tier names are a vocabulary of the catalogue, so the catalogue and its version are functions of the
rules: the ones in force are those of ``LOYALTY_RULES`` (``Settings.rules``), read when first asked for, not
when a module is imported, so a process started with other rules reports and writes their version.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from loyalty_core import Rules, get_settings, load_rules
from pipelines.features.catalogue import Feature, build_catalogue, feature_version, render_markdown


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """What the features need of the earning rules: the tiers and which spend qualifies for them."""

    tiers: tuple[str, ...]
    tier_min_spend: tuple[float, ...]
    qualifying_types: tuple[str, ...]

    @classmethod
    def from_rules(cls, rules: Rules) -> FeatureConfig:
        return cls(
            tiers=tuple(t.name for t in rules.tiers),
            tier_min_spend=tuple(float(t.min_spend) for t in rules.tiers),
            qualifying_types=tuple(sorted(rules.qualifying_types)),
        )

    @property
    def catalogue(self) -> tuple[Feature, ...]:
        return build_catalogue(self.tiers)


@lru_cache(maxsize=8)
def _config_of(path: Path) -> FeatureConfig:
    return FeatureConfig.from_rules(load_rules(path))


def default_config() -> FeatureConfig:
    """The config of the rules in force (``LOYALTY_RULES``); read once per rules file."""
    return _config_of(Path(get_settings().rules))


def current_catalogue() -> tuple[Feature, ...]:
    """Every feature in output order, with the tiers of the rules in force."""
    return default_config().catalogue


def current_feature_version() -> str:
    """The version the feature job writes and the service reads under the rules in force."""
    return feature_version(current_catalogue())


def catalogue_markdown(catalogue: tuple[Feature, ...] | None = None) -> str:
    """``docs/features.md`` of ``catalogue`` (by default that of the rules in force)."""
    return render_markdown(catalogue if catalogue is not None else current_catalogue())
