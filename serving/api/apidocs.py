"""The OpenAPI pages (``/docs``, ``/redoc``), served with their scripts and styles from this package.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from Google): on a bank's
network, which reaches no CDN, both come up blank. The pinned copies in ``serving/static`` (versions,
checksums and licences in its README) are served from ``/static`` instead, so the pages need nothing but
this service.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"  # serving/static, shipped as package data
STATIC_URL = "/static"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"

# What the pages may load: this service only. The inline script is FastAPI's page set-up; ReDoc styles
# inline and searches in a blob worker. ReDoc's side menu also shows Redocly's logo from their CDN: this
# policy stops the browser from even asking for it (the image then hides itself), so an offline network
# sees no request leave.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
    )
)


def install_docs(app: FastAPI) -> None:
    """Adds ``/docs``, ``/redoc`` and the ``/static`` mount to an app built with ``docs_url=None`` and
    ``redoc_url=None`` (FastAPI's documented recipe for self-hosted assets)."""
    openapi_url = app.openapi_url
    if openapi_url is None:  # no document, nothing for the pages to show
        return
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")

    def prefix(request: Request) -> str:
        # Behind a proxy that mounts the service under a path, every URL the page loads needs that path.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=None,  # keys go in a header: there is no OAuth flow to return from
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page
