"""Sign-in code requests: how long `/app/v1/sign-in/code` takes to answer for an address that
belongs to a user and for one that does not. The two must cost the same, or the timing tells
who exists.

    .venv/bin/python bench/sign_in_code_bench.py [--requests N] [--postgres URL]

In-process, on SQLite in a fresh file and (with a URL) on PostgreSQL in a scratch database: N
users, then N requests for their addresses interleaved with N for unknown ones, one at a time,
each timed from the call to the answer's last byte handed to the server (work the app does
after that is waited for between requests, untimed). Prints the mean and median of each.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from roster.domain.mode import Mode
from roster.jobs.imports import run_import
from roster.settings import Settings
from roster.store import tenants
from roster.store.db import create_engine, migrate, scratch_postgres, writing
from roster.web.app import create_app


def csv(count: int, domain: str) -> bytes:
    header = "CSV_USERNAME;CSV_FIRSTNAME;CSV_SURNAME;CSV_DISPLAYNAME;CSV_EMAIL"
    rows = [f"u{n};Jan;Jansen;Jan {n};u{n}@{domain}" for n in range(count)]
    return ("\r\n".join([header, *rows]) + "\r\n").encode()


async def answer_time(app: Any, email: str) -> float:
    """Seconds from the call to the answer's last byte, for one request."""
    body = json.dumps({"email": email}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/app/v1/sign-in/code", "raw_path": b"/app/v1/sign-in/code",
        "root_path": "", "query_string": b"", "client": ("127.0.0.1", 40000),
        "server": ("roster", 80),
        "headers": [(b"host", b"roster"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    sent: list[bool] = []
    answered = 0.0

    async def receive() -> dict[str, Any]:
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the app works after the answer
        sent.append(True)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal answered
        if message["type"] == "http.response.start":
            assert message["status"] == 202, message
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered = time.perf_counter()

    started = time.perf_counter()
    await app(scope, receive, send)
    code_mail = getattr(app.state, "code_mail", None)
    if code_mail is not None:  # the codes mailed after the answer, untimed
        await code_mail.drained()
    return answered - started


async def measure(url: str, data_dir: Path, count: int) -> dict[str, list[float]]:
    engine = create_engine(url)
    await migrate(engine)
    slug = f"b-{uuid.uuid4().hex[:8]}"
    async with writing(engine) as conn:
        await tenants.create(conn, slug, "Bench")
    domain = f"{slug}.example"
    await run_import(engine, slug, csv(count, domain), mode=Mode.ADD, channel="cli", actor="b")
    settings = Settings(data_dir=data_dir, app_sign_in_attempts_per_minute=10**9)
    app = create_app(engine, settings=settings)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for n in range(20):  # warm up both paths
        await answer_time(app, f"u{n}@{domain}" if n % 2 else f"warm{n}@nobody.example")
    for n in range(count):
        times["known"].append(await answer_time(app, f"u{n}@{domain}"))
        times["unknown"].append(await answer_time(app, f"x{n}@nobody.example"))
    await engine.dispose()
    return times


def report(name: str, times: dict[str, list[float]]) -> None:
    for path, values in times.items():
        mean, median = statistics.fmean(values) * 1e3, statistics.median(values) * 1e3
        print(f"{name:10} {path:8} n={len(values):5}  mean {mean:6.3f} ms  median {median:6.3f} ms")
    gap = statistics.fmean(times["known"]) - statistics.fmean(times["unknown"])
    print(f"{name:10} known - unknown: {gap * 1e3:+.3f} ms (means)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'roster.db'}"
        report("sqlite", await measure(url, Path(tmp) / "var", args.requests))
        if args.postgres:
            with scratch_postgres(args.postgres, "roster_bench") as pg_url:
                report("postgresql", await measure(pg_url, Path(tmp) / "pg", args.requests))


if __name__ == "__main__":
    uvloop.run(main())
