"""The HTTP face of the platform: routers per area, request and response schemas, dependencies, API keys,
the one error shape, the exact-JSON contract and the offline API docs.

``serving.app`` assembles them; the work behind each route lives in ``loyalty_core``, ``models`` and
``serving.runtime``.
"""

from serving.api.apidocs import install_docs
from serving.api.contract import REPLAYED_HEADER, ExactJSONRoute, write
from serving.api.deps import Services
from serving.api.http_errors import (
    ERROR_RESPONSES,
    BodyLimitMiddleware,
    ErrorOut,
    UnexpectedErrorMiddleware,
    error_body,
    install_error_handlers,
)
from serving.api.security import ADMIN, SCOPES, ApiKeys, Caller, parse_api_keys

__all__ = [
    "ADMIN",
    "ERROR_RESPONSES",
    "REPLAYED_HEADER",
    "SCOPES",
    "ApiKeys",
    "BodyLimitMiddleware",
    "Caller",
    "ErrorOut",
    "ExactJSONRoute",
    "Services",
    "UnexpectedErrorMiddleware",
    "error_body",
    "install_docs",
    "install_error_handlers",
    "parse_api_keys",
    "write",
]
