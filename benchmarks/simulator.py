"""Simulator throughput: wall time, peak memory and transactions per second of one ``simulate`` run.

    python benchmarks/simulator.py [--customers 100000] [--days 365] [--seed 0] [--out DIR]

Writes into ``--out`` (default: a temporary directory, removed afterwards) and prints a markdown table: the
wall time of each stage (customers and campaigns, transactions, writing), the whole run, the peak resident
set size of this process (``getrusage``: it includes the interpreter and the imported libraries), the rows
written per file, transactions per second and the size on disk.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pipelines import DEFAULT_START, SimConfig, simulate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the output here (default: temporary)")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="simulator-bench-")) / "history"
    stages: dict[str, float] = {}
    began = time.perf_counter()

    def progress(stage: str, n: int, total: int | None = None) -> None:
        stages.setdefault(stage, time.perf_counter())  # first call of a stage marks its start

    try:
        config = SimConfig(customers=args.customers, days=args.days, seed=args.seed, start=DEFAULT_START)
        summary = simulate(config, out, force=args.out is not None, progress=progress)
        wall = time.perf_counter() - began
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        size_mib = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        marks = [*stages.values(), began + wall]
        print(f"simulate --customers {args.customers} --days {args.days} --seed {args.seed}\n")
        print("| measure | value |")
        print("| --- | ---: |")
        for (stage, start), stop in zip(stages.items(), marks[1:], strict=True):
            print(f"| {stage} (s) | {stop - start:,.1f} |")
        print(f"| wall time (s) | {wall:,.1f} |")
        print(f"| peak RSS (MiB) | {peak_mib:,.0f} |")
        print(f"| transactions | {summary.transactions:,} |")
        print(f"| transactions/s | {summary.transactions / wall:,.0f} |")
        print(f"| decisions / offers sent / completed | {summary.decisions:,} / {summary.offers_sent:,} / "
              f"{summary.completions:,} |")  # fmt: skip
        print(f"| output on disk (MiB) | {size_mib:,.0f} |")
    finally:
        if args.out is None:
            shutil.rmtree(out.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
