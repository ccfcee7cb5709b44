"""API keys: parsing LOYALTY_API_KEYS, digests only, scopes."""

from __future__ import annotations

import pytest

from loyalty_core import ConfigurationError
from serving.api.security import Caller, parse_api_keys, require_scope


def test_parse_api_keys_keeps_digests_and_merges_scopes() -> None:
    keys = parse_api_keys(" core:k1 , marketing:k2,admin:k3,marketing:k1,")
    assert keys.scopes_of("k1") == {"core", "marketing"}
    assert keys.scopes_of("k3") == {"admin"}
    assert keys.scopes_of("k4") is None
    assert keys.scopes_of("") is None
    assert "k1" not in repr(keys)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("core", "entry 1 is not scope:key"),
        ("core:", "entry 1 is not scope:key"),
        ("core:a,root:b", "entry 2 has unknown scope 'root'"),
        ("", "holds no key"),
    ],
)
def test_parse_api_keys_refuses_mistakes(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_api_keys(spec)


def test_require_scope_refuses_unknown_scope_names() -> None:
    with pytest.raises(ValueError, match="unknown scopes"):
        require_scope("cor")


def test_caller_actor_names_the_scope_not_the_key() -> None:
    assert Caller("marketing").actor == "api:marketing"
