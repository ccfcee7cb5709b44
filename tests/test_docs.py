"""The repository's docs/ stay true: the HTTP reference is what the service serves, and nothing the README
or docs/ link to lives outside the repository."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _http_reference() -> str:
    spec = importlib.util.spec_from_file_location("http_reference", ROOT / "scripts" / "http_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered: str = module.render()
    return rendered


def test_http_reference_is_what_the_service_serves() -> None:
    assert (ROOT / "docs" / "http.md").read_text() == _http_reference(), (
        "docs/http.md is stale: run `.venv/bin/python scripts/http_reference.py > docs/http.md`"
    )


def test_readme_and_docs_link_only_inside_the_repository() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for outside in ("../shared/DESIGN.md", "../shared/API.md", "../shared/data/README.md"):
            assert outside not in text, f"{page.name} points outside the repository: {outside}"
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (page.parent / target).resolve().is_relative_to(ROOT), (page.name, target)
            assert (page.parent / target).exists(), f"{page.name} links to a missing {target}"
