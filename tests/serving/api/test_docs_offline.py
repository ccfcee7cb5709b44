"""The OpenAPI pages work on a network that reaches nothing but the service (a bank's has no CDN).

Two levels: the HTML of ``/docs`` and ``/redoc`` names only this service's URLs, each of which answers with
the right type; and a real browser (Chromium, driven by Playwright) with every host but 127.0.0.1 blocked
loads both pages and shows the operations.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from loyalty_core import Settings
from serving.app import create_app
from tests.serving.conftest import ThreadedServer

CHROMIUM = os.environ.get("LOYALTY_CHROMIUM", "/usr/bin/chromium")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def referenced_urls(html: str) -> list[str]:
    """Every URL the page loads by itself: scripts, styles, icons, and the document Swagger UI fetches."""
    attributes = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    spec = re.findall(r"""(?:url:\s*|spec-url=)["']([^"']+)["']""", html)
    return attributes + spec


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_service_itself(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    urls = referenced_urls(response.text)
    assert any(u.endswith(".js") for u in urls), f"{page} loads no script? {urls}"
    foreign = [u for u in urls if urlsplit(u).scheme or urlsplit(u).netloc or not u.startswith("/")]
    assert not foreign, f"{page} loads from outside the service: {foreign}"
    assert "googleapis" not in response.text
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = Path(urlsplit(url).path).suffix
        expected = CONTENT_TYPES.get(suffix, "application/json")
        assert expected in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 0, url


def test_the_vendored_assets_ship_with_their_licences() -> None:
    static = Path(create_app.__code__.co_filename).parent / "static"
    for folder in ("swagger-ui", "redoc"):
        assert (static / folder / "LICENSE").is_file(), folder


# --- in a browser, offline ---------------------------------------------------------------------------------
def _browser_or_skip() -> Any:
    """Playwright's sync API, driving the system Chromium (never a browser Playwright downloads). Required in
    CI, where .ci/run installs both; skipped elsewhere when either is missing."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing is None and not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set LOYALTY_CHROMIUM)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture
def live(engine: Engine, tmp_path: Path) -> Iterator[str]:
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, multiplier_file=tmp_path / "no-rule.json"))
    with ThreadedServer(app) as base:
        yield base


@pytest.mark.slow
def test_docs_render_the_operations_in_a_browser_that_reaches_only_the_service(
    live: str, client: TestClient
) -> None:
    sync_playwright = _browser_or_skip()
    operations = client.get("/openapi.json").json()["paths"]
    operation_count = sum(
        1
        for methods in operations.values()
        for m in methods
        if m in {"get", "post", "put", "delete", "patch"}
    )
    blocked: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            # Belt and braces: even a request the route hook missed cannot resolve a name.
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
        )
        try:
            page = browser.new_context(service_workers="block").new_page()
            page.route("**/*", only_loopback)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))

            page.goto(f"{live}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            assert page.locator(".opblock").count() == operation_count
            assert page.locator(".opblock-summary-path[data-path='/v1/transactions']").count() == 1
            assert "Unable to render" not in page.content()

            page.goto(f"{live}/redoc")
            page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
            assert page.locator("[data-section-id^='operation/']").count() == operation_count
        finally:
            browser.close()
    assert blocked == [], f"the pages tried to reach outside the service: {blocked}"
    # ReDoc's side menu always asks for Redocly's logo from their CDN; the page's policy refuses it before any
    # request is made (so ``blocked`` stays empty) and the image hides itself. Nothing else may fail.
    refused_logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert [e for e in errors if refused_logo not in e] == [], errors
