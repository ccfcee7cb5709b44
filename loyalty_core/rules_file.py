"""Reading the earning-rules file: the rules' one contact with the filesystem (``rules`` itself is pure)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from loyalty_core.errors import ConfigurationError
from loyalty_core.rules import Rules, parse_rules


def load_rules(path: Path | str) -> Rules:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"rules file not found: {p} (set LOYALTY_RULES)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"rules file {p} is not valid TOML: {exc}") from exc
    return parse_rules(doc)
