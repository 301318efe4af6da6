"""Problems benchmark: dry-run imports of files whose rows share a username or e-mail address,
beside a file of distinct rows, through run_import (the path of `roster import --dry-run`, the
console's preview and the drop box).

    .venv/bin/python bench/problems_bench.py [--rows N] [--postgres URL] [--sqlite-dir DIR]

Each import runs in a fresh child process, so its peak RSS is its own. Per file: the time of the
dry run, the child's RSS before it and at its peak, the problems found and kept, and the bytes of
the JSON report (`roster import --dry-run --json`) and of the error report CSV, beside the file's.
SQLite always runs, in a fresh database file; PostgreSQL runs when a URL is given, in a scratch
database created and dropped here. Exit status 1 when a report is over 4 times its file's size.
"""

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from roster.domain import error_report as reports
from roster.domain.mode import Mode
from roster.jobs.imports import run_import
from roster.store import tenants
from roster.store.db import create_engine, migrate, scratch_postgres, writing

T = TypeVar("T")
EMPTY, TAKEN = "bench-empty", "bench-taken"  # an empty organization; one holding the distinct rows
HEADER = ("CSV_USERNAME", "CSV_FIRSTNAME", "CSV_SURNAME", "CSV_DISPLAYNAME", "CSV_EMAIL")
REPORT_AT_MOST = 4.0  # report bytes per file byte


def line(values: tuple[str, ...]) -> str:
    return ";".join(f'"{value}"' for value in values)


def row(n: int, email: str | None = None) -> tuple[str, ...]:
    return (
        f"user{n:06d}",
        "Jan",
        f"Jansen{n}",
        f"Jansen {n}",
        email or f"user{n:06d}@example.com",
    )


def csv_file(rows: list[tuple[str, ...]]) -> bytes:
    return ("\r\n".join(map(line, [HEADER, *rows])) + "\r\n").encode()


@dataclass(frozen=True)
class Case:
    name: str
    slug: str
    data: bytes


def cases(count: int) -> list[Case]:
    numbers = range(count)
    distinct = [row(n) for n in numbers]
    one_email = [row(n, "x@example.com") for n in numbers]
    # Each row names an existing user with the next user's address.
    taken = [row(n, distinct[(n + 1) % count][4]) for n in numbers]
    return [
        Case("distinct rows", EMPTY, csv_file(distinct)),
        Case("one row repeated", EMPTY, csv_file([row(0)] * count)),
        Case("one e-mail on every row", EMPTY, csv_file(one_email)),
        Case("e-mails of other users", TAKEN, csv_file(taken)),
    ]


@dataclass(frozen=True)
class Figures:
    seconds: float
    rss_before_mb: float
    rss_peak_mb: float
    found: int
    kept: int
    json_bytes: int
    csv_bytes: int | None  # None: a Roster whose error report takes other arguments


def rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def error_report_bytes(report: Any) -> int | None:
    problems = getattr(report, "problems", None)
    if problems is None:
        return None
    return len(reports.error_report(problems).encode())


async def dry_run(url: str, case: Case) -> Figures:
    engine = create_engine(url)
    before = rss_mb()
    try:
        start = time.perf_counter()
        report = await run_import(
            engine, case.slug, case.data, mode=Mode.REPLACE, channel="cli", actor="bench",
            dry_run=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        shown = report.as_json()
        json_bytes = len(json.dumps(shown).encode())
        csv_bytes = error_report_bytes(report)
    finally:
        await engine.dispose()
    found = shown.get("error_count", len(shown["errors"]))
    found += shown.get("warning_count", len(shown["warnings"]))
    kept = len(shown["errors"]) + len(shown["warnings"])
    return Figures(seconds, before, rss_mb(), found, kept, json_bytes, csv_bytes)


def measured(url: str, case: Case) -> Figures:
    return asyncio.run(dry_run(url, case))


async def prepare(url: str, distinct: bytes) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with writing(engine) as conn:
            await tenants.create(conn, EMPTY, "Bench organization")
            await tenants.create(conn, TAKEN, "Bench organization with users")
        report = await run_import(
            engine, TAKEN, distinct, mode=Mode.ADD, channel="cli", actor="bench"
        )
        assert report.status == "applied", report.status
    finally:
        await engine.dispose()


def prepared(url: str, distinct: bytes) -> None:
    asyncio.run(prepare(url, distinct))


def in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """A new interpreter: a child's ru_maxrss starts from its parent's peak otherwise."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(function, *args).result()


def measure(backend: str, url: str, count: int) -> bool:
    every = cases(count)
    in_fresh_process(prepared, url, every[0].data)
    print(f"\n{backend}: dry runs of {count:,} rows (mode replace)")
    print(
        f"{'file':<26} {'file KB':>8} {'time s':>7} {'RSS MB':>12} {'problems':>9} "
        f"{'kept':>6} {'JSON KB':>8} {'CSV KB':>7} {'JSON/file':>9}"
    )
    fine = True
    for case in every:
        figures = in_fresh_process(measured, url, case)
        ratio = figures.json_bytes / len(case.data)
        fine &= ratio <= REPORT_AT_MOST
        csv_kb = "-" if figures.csv_bytes is None else f"{figures.csv_bytes / 1024:.0f}"
        rss = f"{figures.rss_before_mb:.0f} -> {figures.rss_peak_mb:.0f}"
        print(
            f"{case.name:<26} {len(case.data) / 1024:>8.0f} {figures.seconds:>7.2f} "
            f"{rss:>12} {figures.found:>9,} {figures.kept:>6,} "
            f"{figures.json_bytes / 1024:>8.0f} {csv_kb:>7} {ratio:>9.2f}",
            flush=True,
        )
    return fine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows in each file")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (postgresql://)")
    parser.add_argument("--sqlite-dir", type=Path, help="where the SQLite file goes (temporary)")
    args = parser.parse_args(argv)
    fine = True
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as temporary:
        folder = (args.sqlite_dir or Path(temporary)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        database = folder / f"roster-problems-{uuid.uuid4().hex[:12]}.db"
        try:
            fine &= measure("SQLite", f"sqlite:///{database}", args.rows)
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
    if args.postgres:
        with scratch_postgres(args.postgres, "roster_bench") as scratch:
            fine &= measure("PostgreSQL", scratch, args.rows)
    if not fine:
        print(f"a report is over {REPORT_AT_MOST:.0f} times its file", file=sys.stderr)
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
