"""Token validation benchmark: how many app requests a second can have their bearer token
checked (`TokenCheck.session`, one indexed query that also checks the user is present and
active).

    .venv/bin/python bench/session_bench.py [--sessions N] [--seconds S] [--concurrency C]
                                            [--postgres URL]

In-process, on SQLite in a fresh file and (with a URL) on PostgreSQL in a scratch database:
N users each signed in once, then C concurrent workers validate random tokens for S seconds.
Target: >= 5,000 validations a second. Exit status 1 when a valid token was refused.
"""

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import uvloop

from roster.domain.mode import Mode
from roster.jobs.imports import run_import
from roster.store import directory_reads, sessions, tenants
from roster.store.db import (
    create_engine,
    dispose,
    migrate,
    scratch_postgres,
    writing,
)
from roster.store.prepared import DirectReads
from roster.store.token_check import TokenCheck

TARGET = 5000


def csv(count: int) -> bytes:
    header = "CSV_USERNAME;CSV_FIRSTNAME;CSV_SURNAME;CSV_DISPLAYNAME;CSV_EMAIL"
    rows = [f"u{n};Jan;Jansen;Jan {n};u{n}@example.com" for n in range(count)]
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


async def measure(url: str, count: int, seconds: float, concurrency: int) -> tuple[float, bool]:
    engine = create_engine(url)
    await migrate(engine)
    slug = f"b-{uuid.uuid4().hex[:8]}"
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, slug, "Bench")
    await run_import(engine, slug, csv(count), mode=Mode.ADD, channel="cli", actor="bench")
    tokens = []
    async with writing(engine) as conn:
        for user in await directory_reads.list_users(conn, tenant.id):
            _, token, _ = await sessions.create_app(
                conn, tenant.id, user["id"], timedelta(hours=1), timedelta(days=1)
            )
            tokens.append(token)
    reads = DirectReads(engine)
    check = TokenCheck(reads)  # as the app API validates a bearer token
    done, refused = 0, 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, refused
        rng = random.Random()
        while time.perf_counter() < deadline:
            found = await check.session(rng.choice(tokens), "app")
            done += 1
            refused += found is None

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = done / (time.perf_counter() - started)
    await reads.close()
    await dispose(engine)
    return rate, refused == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    ok = True
    runs: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(("SQLite", f"sqlite:///{Path(tmp) / 'roster.db'}"))
        with (
            scratch_postgres(args.postgres, "roster_bench")
            if args.postgres
            else tempfile.TemporaryDirectory() as pg
        ):
            if args.postgres:
                runs.append(("PostgreSQL", pg))
            for name, url in runs:
                rate, good = uvloop.run(measure(url, args.sessions, args.seconds, args.concurrency))
                ok &= good
                mark = "meets" if rate >= TARGET else "BELOW"
                print(f"{name:<10} | {rate:8,.0f} validations/s | {mark} the target of {TARGET:,}/s"
                      + ("" if good else " | A VALID TOKEN WAS REFUSED"), flush=True)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
