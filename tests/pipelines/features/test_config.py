"""The catalogue and its version are those of the rules in force (``LOYALTY_RULES``), read when asked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import pipelines.features as features
from loyalty_core import DEFAULT_RULES, get_settings, load_rules
from pipelines.features import (
    FeatureConfig,
    FeatureJobReport,
    catalogue_markdown,
    current_catalogue,
    current_feature_version,
    default_config,
    feature_version,
)


def _other_tiers(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(DEFAULT_RULES.read_text().replace('name = "gold"', 'name = "platinum"'))
    return path


def test_the_catalogue_follows_the_rules_in_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default_version = current_feature_version()
    assert default_version == feature_version(FeatureConfig.from_rules(load_rules(DEFAULT_RULES)).catalogue)
    monkeypatch.setenv("LOYALTY_RULES", str(_other_tiers(tmp_path)))
    get_settings.cache_clear()
    tier = next(f for f in current_catalogue() if f.name == "tier")
    assert tier.vocabulary == ("base", "silver", "platinum")
    assert default_config().tiers == ("base", "silver", "platinum")
    assert current_feature_version() != default_version
    assert current_feature_version() == features.FEATURE_VERSION
    assert current_catalogue() == features.CATALOGUE
    assert f"`{current_feature_version()}`" in catalogue_markdown()


def test_the_feature_job_reports_the_version_it_writes(tmp_path: Path) -> None:
    config = FeatureConfig.from_rules(load_rules(_other_tiers(tmp_path)))
    version = feature_version(config.catalogue)
    report = FeatureJobReport(as_of=dt.datetime(2025, 6, 1, tzinfo=dt.UTC), engine="pandas", version=version)
    assert f"(version {version})" in report.lines()[0]
    assert version != current_feature_version()


def test_an_unknown_attribute_is_still_an_error() -> None:
    with pytest.raises(AttributeError):
        _ = features.NOT_A_NAME
