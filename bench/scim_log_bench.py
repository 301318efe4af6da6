"""What the provisioning log costs SCIM: the server's CPU per request with the log and without,
measured in-process, where a machine shared with other work blurs wrk's requests a second.

    .venv/bin/python bench/scim_log_bench.py [--requests N] [--rounds R] [--postgres URL]

The app is called as uvicorn calls it (plain ASGI messages, no client in the process) by 20
concurrent callers: N creates, then N `userName eq` lookups of them, in R rounds that alternate
the log on and off (off: the SCIM routes without the layer that hands rows to the log). A round's
CPU is this process's, the log's writes included (the round ends when they are written); the
database server's own CPU is not counted. Prints CPU per request, on and off, and the cost.
On a busy machine those rounds vary by more than the log costs, so the log's two parts are also
timed alone, in tight loops: the layer that makes a request's row (around an app that does
nothing), and writing rows (per row, in batches of 2,000); their sum over the CPU of a request
without the log is the cost.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import orjson

from roster.store import provisioning_log, scim_tokens, tenants
from roster.store.db import create_engine, dispose, migrate, scratch_postgres, writing
from roster.store.prepared import DirectWrites
from roster.web.app import create_app

CALLERS = 20
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


async def call(app: Any, token: str, method: str, path: str, query: bytes, body: bytes) -> int:
    """One request through the app as a server hands it over; its status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("bench", 80),
        "headers": [
            (b"host", b"bench"), (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/scim+json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def user(name: str) -> bytes:
    body = {
        "schemas": [CORE], "userName": name, "displayName": "Bench User",
        "name": {"givenName": "Bench", "familyName": "User"},
        "emails": [{"value": name, "type": "work", "primary": True}],
    }  # fmt: skip
    return orjson.dumps(body)


async def workload(app: Any, token: str, names: list[str]) -> tuple[float, float]:
    """CPU seconds of the creates and of the lookups of `names`."""

    async def each(work: list[tuple[str, str, bytes, bytes]]) -> float:
        started = time.process_time()
        queue = list(reversed(work))

        async def caller() -> None:
            while queue:
                method, path, query, body = queue.pop()
                status = await call(app, token, method, path, query, body)
                assert status < 300, status

        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        await app.state.provisioning_log.close()  # its writes count
        return time.process_time() - started

    creates = [("POST", "/scim/v2/Users", b"", user(n)) for n in names]
    lookups = [("GET", "/scim/v2/Users", f'filter=userName+eq+"{n}"'.encode(), b"") for n in names]
    return await each(creates), await each(lookups)


async def parts(url: str) -> tuple[float, float, float]:
    """Microseconds a request spends in the log's layer, and writing one row: in all, and on
    the event loop's thread."""
    from roster.web.scim import _Logged  # the layer itself, around an app that does nothing
    from roster.web.scim.note import note_in

    async def nothing(scope: Any, receive: Any, send: Any) -> None:
        note = note_in(scope)
        note.tenant_id, note.token, note.outcome = tenant_id, "bench", "found 1"
        note.name, note.resource_id = "user000123@example.com", str(tenant_id)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    class Kept:
        rows: ClassVar[list[Any]] = []

        def add(self, row: Any) -> None:
            self.rows.append(row)

    tenant_id = uuid.uuid4()
    scope = {
        "type": "http", "method": "GET", "path": "/scim/v2/Users",
        "query_string": b'filter=userName+eq+"user000123@example.com"',
    }  # fmt: skip

    async def receive() -> Any:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        return None

    layered, count = _Logged(nothing, Kept()), 20_000

    async def timed(app: Any) -> float:
        started = time.process_time()
        for _ in range(count):
            await app(dict(scope), receive, send)
        return (time.process_time() - started) / count * 1e6

    layer = statistics.median([await timed(layered) - await timed(nothing) for _ in range(5)])
    rows = Kept.rows[:2000]
    engine = create_engine(url)
    await migrate(engine)
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"p-{uuid.uuid4().hex[:8]}", "Parts")
    writes, per_row, on_loop = DirectWrites(engine), [], []
    for _ in range(5):
        batch = [row | {"tenant_id": tenant.id} for row in rows]
        started, loop_started = time.process_time(), time.thread_time()
        async with writes.transaction() as conn:  # as the app's ProvisioningLog writes
            await provisioning_log.record(conn, batch)
        per_row.append((time.process_time() - started) / len(batch) * 1e6)
        on_loop.append((time.thread_time() - loop_started) / len(batch) * 1e6)
    await writes.close()
    await dispose(engine)
    return layer, statistics.median(per_row), statistics.median(on_loop)


async def measure(url: str, requests: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    engine = create_engine(url)
    await migrate(engine)
    async with writing(engine) as conn:
        tenant = await tenants.create(conn, f"b-{uuid.uuid4().hex[:8]}", "Bench")
        _, token = await scim_tokens.create(conn, tenant.id, "bench")
    app = create_app(engine, scim_rate_limit=1e9)
    logged = app.scim
    found: dict[str, dict[str, list[float]]] = {
        "on": {"POST": [], "GET": []}, "off": {"POST": [], "GET": []},
    }  # fmt: skip
    await workload(app, token, [f"warm{i}@bench.example" for i in range(200)])
    for round_number in range(rounds * 2):
        side = "on" if round_number % 2 == 0 else "off"
        app.scim = logged if side == "on" else logged.app
        names = [f"u{round_number}-{i}@bench.example" for i in range(requests)]
        creates, lookups = await workload(app, token, names)
        found[side]["POST"].append(creates / requests * 1000)
        found[side]["GET"].append(lookups / requests * 1000)
    await app.state.direct_reads.close()
    await app.state.direct_writes.close()
    await dispose(engine)
    return found


def report(
    backend: str, found: dict[str, dict[str, list[float]]], layer: float, row: float, loop: float
) -> None:
    for method, label in (("GET", "userName eq"), ("POST", "POST /Users")):
        on, off = statistics.median(found["on"][method]), statistics.median(found["off"][method])
        print(
            f"{backend:<10} {label:<12} parts: layer {layer:.1f} us + writing a row {row:.1f} us"
            f" ({loop:.1f} us on the event loop's thread)"
            f" = {100 * (layer + row) / (off * 1000):.1f} %"
            f" ({100 * (layer + loop) / (off * 1000):.1f} % on the loop's thread)"
            f" of a request's {off:.3f} ms"
        )
        print(
            f"{backend:<10} {label:<12} CPU/request: log on {on:.3f} ms, off {off:.3f} ms, "
            f"cost {100 * (on - off) / off:+.1f} %  (medians; on "
            f"{', '.join(f'{v:.3f}' for v in found['on'][method])}; off "
            f"{', '.join(f'{v:.3f}' for v in found['off'][method])})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="of each kind, per round")
    parser.add_argument("--rounds", type=int, default=3, help="with the log, and as many without")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roster-log-bench-") as temporary:
        url = f"sqlite:///{Path(temporary) / 'roster.db'}"
        layer, row, loop = asyncio.run(parts(url))
        report("SQLite", asyncio.run(measure(url, args.requests, args.rounds)), layer, row, loop)
    if args.postgres:
        with scratch_postgres(args.postgres, "roster_log_bench") as url:
            layer, row, loop = asyncio.run(parts(url))
            found = asyncio.run(measure(url, args.requests, args.rounds))
            report("PostgreSQL", found, layer, row, loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
