"""The metrics folder that ``loyalty serve`` shares between worker processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.runtime.metrics import ENV, prepare_multiprocess_dir, remove_multiprocess_dir


@pytest.fixture(autouse=True)
def _metrics_dir_variable_restored() -> Iterator[None]:
    """``prepare_multiprocess_dir`` sets the variable itself, behind monkeypatch's back: left set, it points
    every later ``loyalty serve`` of the run (tests/serving/test_crash.py...) at a folder already removed."""
    before = os.environ.get(ENV)
    yield
    if before is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = before


def test_prepare_multiprocess_dir_is_skipped_for_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert prepare_multiprocess_dir(1) is None


def test_prepare_multiprocess_dir_creates_a_fresh_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    path = prepare_multiprocess_dir(4)
    assert path is not None
    try:
        assert path.is_dir()
        assert list(path.iterdir()) == []
        assert os.environ[ENV] == str(path)
    finally:
        remove_multiprocess_dir(path)
    assert not path.exists()


def test_prepare_multiprocess_dir_empties_a_folder_given_by_the_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(ENV, str(tmp_path))
    assert prepare_multiprocess_dir(2) == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    remove_multiprocess_dir(tmp_path)  # not one we created: left alone
    assert tmp_path.exists()
