"""Console user list benchmark: the users page's query at 100,000 users.

    .venv/bin/python bench/console_bench.py [--users N] [--postgres URL]

Imports N generated users (as import_bench builds them) into a fresh SQLite file and, with a URL,
a scratch PostgreSQL database, then times `user_search.search` (the page's whole work in the
database: the count and one page of 50) for typical views, each the median of 5 runs.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from import_bench import build_scenario
from roster.domain.mode import Mode
from roster.jobs.imports import run_import
from roster.store import tenants, user_search
from roster.store.db import create_engine, dispose, migrate, scratch_postgres, writing

VIEWS = {
    "first page": user_search.Query(),
    "search 'jansen'": user_search.Query(text="jansen"),
    "search an e-mail": user_search.Query(text="a.bakker.5000@"),
    "active first aiders, by department": user_search.Query(
        active=True, first_aider=True, sort="department"
    ),
    "page 1,000 by name, descending": user_search.Query(sort="name", descending=True, page=1000),
}


async def measure(url: str, source: Path) -> dict[str, float]:
    engine = create_engine(url)
    await migrate(engine)
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, "bench", "Bench")
    report = await run_import(
        engine, "bench", source.read_bytes(), mode=Mode.ADD, channel="cli", actor="bench"
    )
    assert report.status == "applied", report.status
    timings = {}
    for label, query in VIEWS.items():
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            async with engine.connect() as conn:
                await user_search.search(conn, tenant.id, query)
            runs.append(time.perf_counter() - started)
        timings[label] = statistics.median(runs) * 1000
    await dispose(engine)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = build_scenario(args.users, Path(tmp)).first
        results = {"SQLite": asyncio.run(measure(f"sqlite:///{Path(tmp) / 'r.db'}", source))}
        if args.postgres:
            with scratch_postgres(args.postgres, "roster_bench") as url:
                results["PostgreSQL"] = asyncio.run(measure(url, source))
    print(
        f"{'view (' + format(args.users, ',') + ' users)':<40}"
        + "".join(f"{b:>14}" for b in results)
    )
    for label in VIEWS:
        print(f"{label:<40}" + "".join(f"{r[label]:>11.1f} ms" for r in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
