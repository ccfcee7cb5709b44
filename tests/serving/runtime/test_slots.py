"""Model slots: atomic swaps, a failed reload keeps the old model serving, a missing one is a clear 503."""

from __future__ import annotations

import threading

import pytest

from loyalty_core import Unavailable
from serving.runtime.slots import Slot


class Registry:
    """A stand-in for the registry's alias: which version is champion, and whether its artifact loads."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.broken = False
        self.loads = 0

    def load(self) -> tuple[dict[str, str], str]:
        self.loads += 1
        if self.version is None:
            raise Unavailable("no champion registered for loyalty-churn")
        if self.broken:
            raise ValueError("model.txt is truncated")
        return {"model": self.version}, self.version

    def probe(self) -> str | None:
        return self.version


def test_never_loaded_slot_is_unavailable_with_the_reason() -> None:
    reg = Registry()
    slot = Slot("churn model", reg.load, reg.probe)
    assert slot.reload() is False
    with pytest.raises(Unavailable, match="no champion registered") as info:
        slot.get()
    assert info.value.code == "model_unavailable"
    assert slot.status()["status"] == "degraded"


def test_failed_reload_keeps_serving_the_previous_version() -> None:
    reg = Registry()
    reg.version = "3"
    slot = Slot("churn model", reg.load, reg.probe)
    assert slot.reload()
    reg.version, reg.broken = "4", True
    assert slot.refresh_if_changed() is False
    assert slot.get().version == "3"
    status = slot.status()
    assert (status["status"], status["version"]) == ("degraded", "3")
    assert "truncated" in status["error"]
    reg.broken = False
    assert slot.refresh_if_changed() is True
    assert (slot.get().version, slot.status()["status"]) == ("4", "ok")


def test_refresh_loads_only_when_the_alias_moved() -> None:
    reg = Registry()
    reg.version = "1"
    slot = Slot("offer model", reg.load, reg.probe)
    assert slot.refresh_if_changed() is True
    assert slot.refresh_if_changed() is False
    assert reg.loads == 1


def test_readers_always_see_a_whole_version_during_reloads() -> None:
    reg = Registry()
    reg.version = "0"
    slot = Slot("churn model", reg.load, reg.probe)
    slot.reload()
    # Counts and the torn reads only: a list of every read grows with how long the reloads take (millions of
    # tuples a second from four spinning readers; gigabytes in a slow, full run of the suite).
    reads = [0] * 4
    torn: list[tuple[str, str]] = []
    stop = threading.Event()

    def read(i: int) -> None:
        while not stop.is_set():
            loaded = slot.get()
            reads[i] += 1
            if loaded.version != loaded.value["model"]:
                torn.append((loaded.version, loaded.value["model"]))

    readers = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in readers:
        t.start()
    for v in range(1, 200):
        reg.version = str(v)
        slot.refresh_if_changed()
    stop.set()
    for t in readers:
        t.join()
    assert all(reads), "every reader read"
    assert torn == []
    assert slot.get().version == "199"
