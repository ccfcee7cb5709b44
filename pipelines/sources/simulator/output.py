"""The output directory: recognising an earlier run, refusing someone else's files, clearing our own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from loyalty_core import InvalidInput
from pipelines.sources.history import FILES  # the history format the simulator writes

GENERATOR = "loyalty-simulator"
VERSION = "1"


WORK_DIR = ".simulator-work"
TRUTH_FILES = ("truth/customers.parquet", "truth/offer_effects.parquet", "truth/decisions.parquet")


def is_simulator_output(out: Path) -> bool:
    try:
        meta = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("generator") == GENERATOR


def check_output(out: Path, *, force: bool) -> bool:
    """Refuse a non-empty directory of something else (unless forced) and one that cannot be written.

    Returns whether ``out`` holds an earlier simulator output (which a new run replaces). Creates ``out``.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out}: exists and is not a directory", field="out")
    previous = is_simulator_output(out)
    if out.is_dir() and not previous and not force and any(out.iterdir()):
        raise InvalidInput(
            f"--out {out}: directory is not empty and holds no earlier simulator output "
            "(pass --force to write into it anyway)",
            field="out",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InvalidInput(f"--out {out}: cannot write there ({exc.strerror or exc})", field="out") from exc
    return previous


def prepare_output(out: Path, *, force: bool) -> None:
    """Check ``out``; remove an earlier run's files (only those: anything else in the directory stays)."""
    if check_output(out, force=force):
        for name in (*FILES, *TRUTH_FILES, "manifest.json"):
            (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
