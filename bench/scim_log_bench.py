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

    .venv/bin/python bench/scim_log_bench.py --instructions [--requests N] [--postgres URL]

counts instead of timing: the same creates, lookups and PATCHes, log on and log off, each in a
process of its own under valgrind's callgrind, which counts the instructions every request costs
whatever else the machine runs: uvicorn's HTTP protocol (as `roster serve` runs it, on
connections without sockets, so no client is counted), the app, and the log's batches (on
SQLite, the database's work too; PostgreSQL's server is not counted). The log writes a batch at
500 rows, as it does under load (its one-second clock would fire every few dozen requests at
callgrind's pace).
"""

import argparse
import asyncio
import contextlib
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from roster.jobs.provisioning_log import ProvisioningLog
from roster.store import provisioning_log, scim_tokens, tenants
from roster.store.db import create_engine, dispose, migrate, scratch_postgres, writing
from roster.store.prepared import DirectWrites
from roster.web.app import create_app

CALLERS = 20
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


async def call(
    app: Any,
    token: str,
    method: str,
    path: str,
    query: bytes,
    body: bytes,
    created: list[str] | None = None,
) -> int:
    """One request through the app as a server hands it over; its status (and a created
    resource's id appended to `created`, when given)."""
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

    layered, count = _Logged(nothing, Kept(), True), 20_000

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


PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
WORKLOADS = ("POST /Users", "userName eq", "PATCH /Users/{id}")
CALLGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]


def callgrind(what: str) -> None:
    """Tell the callgrind running this process to count (`-i on`), stop (`-i off`) or write
    what it counted since the last dump (`-d LABEL`)."""
    subprocess.run(["callgrind_control", *what.split(" ", 1), str(os.getpid())], check=True,
                   capture_output=True)  # fmt: skip


class _Wire(asyncio.Transport):
    """A connection as uvicorn's HTTP protocol sees it: what it writes is kept, and `answered`
    is set once a whole response (headers and Content-Length's bytes) has been written."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.answered = asyncio.Event()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name)

    def write(self, data: Any) -> None:
        self.out += data
        head, found, body = self.out.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        if found and length and len(body) >= int(length.group(1)):
            self.answered.set()

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        return None

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None


class Served:
    """The app behind uvicorn's own HTTP protocol, as `roster serve` runs it (httptools, no
    access log), on connections without sockets: the count holds the server's HTTP work and
    none of a client's."""

    def __init__(self, app: Any, token: str) -> None:
        self.config = uvicorn.Config(
            app, lifespan="off", access_log=False, proxy_headers=False, http="httptools"
        )
        self.config.load()
        self.token = token

    def connection(self) -> tuple[Any, _Wire]:
        wire = _Wire()
        protocol = HttpToolsProtocol(self.config, ServerState(), {})
        protocol.connection_made(wire)
        return protocol, wire

    async def call(
        self, connection: tuple[Any, _Wire], method: str, path: str, query: bytes, body: bytes
    ) -> tuple[int, bytes]:
        protocol, wire = connection
        target = path + ("?" + query.decode() if query else "")
        head = (
            f"{method} {target} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {self.token}"
            f"\r\ncontent-type: application/scim+json\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        wire.out.clear()
        wire.answered.clear()
        protocol.data_received(head.encode() + body)
        await wire.answered.wait()
        return int(wire.out[9:12]), bytes(wire.out.partition(b"\r\n\r\n")[2])


async def counted(side: str, requests: int, url: str) -> None:
    """The workloads, each counted by callgrind on its own (one dump each)."""
    with contextlib.ExitStack() as stack:
        if not url:
            temporary = stack.enter_context(tempfile.TemporaryDirectory(prefix="roster-count-"))
            url = f"sqlite:///{Path(temporary) / 'roster.db'}"
        engine = create_engine(url)
        await migrate(engine)
        async with writing(engine) as conn:
            tenant = await tenants.create(conn, "count", "Count")
            _, token = await scim_tokens.create(conn, tenant.id, "bench")
        app = create_app(engine, scim_rate_limit=1e9)
        logged = app.scim
        logged.log = ProvisioningLog(app.state.direct_writes, seconds=3600.0)  # batches by count
        app.scim = logged if side == "on" else logged.app
        await workload(app, token, [f"warm{i}@count.example" for i in range(200)])
        await logged.log.close()
        names = [f"user{i}@count.example" for i in range(requests)]
        ids: list[str] = []

        served = Served(app, token)
        gc.freeze()  # as roster serve does once started

        async def run(work: list[tuple[str, str, bytes, bytes]]) -> None:
            queue = list(reversed(work))

            async def caller() -> None:
                connection = served.connection()
                while queue:
                    status, answer = await served.call(connection, *queue.pop())
                    assert status < 300, (status, answer)
                    if status == 201:
                        ids.append(orjson.loads(answer)["id"])

            await asyncio.gather(*(caller() for _ in range(CALLERS)))
            await logged.log.close()  # the rows' writes count

        for label in WORKLOADS:
            if label == "POST /Users":
                work = [("POST", "/scim/v2/Users", b"", user(n)) for n in names]
            elif label == "userName eq":
                work = [("GET", "/scim/v2/Users", f'filter=userName+eq+"{n}"'.encode(), b"")
                        for n in names]  # fmt: skip
            else:
                work = [("PATCH", f"/scim/v2/Users/{i}", b"", title(n)) for n, i in enumerate(ids)]
            callgrind("-i on")
            await run(work)
            callgrind(f"-d {label}")
            callgrind("-i off")
        await app.state.direct_reads.close()
        await app.state.direct_writes.close()
        await dispose(engine)


def title(n: int) -> bytes:
    operation = {"op": "replace", "path": "title", "value": f"Title {n}"}
    return orjson.dumps({"schemas": [PATCH], "Operations": [operation]})


def instructions(requests: int, backend: str, postgres: str | None) -> None:
    """Count both sides, each in a process of its own under callgrind (on PostgreSQL each in a
    scratch database, whose server's own work is not counted); print instructions a request."""
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="roster-callgrind-") as out:
        for side in ("off", "on"):
            with contextlib.ExitStack() as stack:
                url = (
                    stack.enter_context(scratch_postgres(postgres, "roster_count"))
                    if postgres
                    else ""
                )
                counter = [*CALLGRIND, f"--callgrind-out-file={out}/{side}.%p", sys.executable]
                command = [*counter, __file__, "--count", side, "--requests", str(requests)]
                child = subprocess.run([*command, "--url", url], capture_output=True, text=True)
            if child.returncode:
                raise SystemExit(f"the counted run failed:\n{child.stderr[-3000:]}")
            counts[side] = {}
            for part in Path(out).glob(f"{side}.*.*"):
                text = part.read_text(errors="replace")
                named = re.search(r"^desc: Trigger: dump (.+)$", text, re.MULTILINE)
                total = re.search(r"^totals: (\d+)", text, re.MULTILINE)
                if named and total:
                    counts[side][named.group(1)] = int(total.group(1))
    for label in WORKLOADS:
        off, on = counts["off"][label] / requests, counts["on"][label] / requests
        print(
            f"{backend:<10} {label:<18} instructions/request: log on {on:,.0f}, off {off:,.0f}, "
            f"cost {100 * (on - off) / off:+.1f} %  ({requests} requests, 20 callers, callgrind)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="of each kind, per round")
    parser.add_argument("--rounds", type=int, default=3, help="with the log, and as many without")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (callgrind), SQLite"
    )
    parser.add_argument("--count", choices=("on", "off"), help=argparse.SUPPRESS)  # the child
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)  # the child's database
    args = parser.parse_args()
    if args.count:
        asyncio.run(counted(args.count, args.requests, args.url))
        return 0
    if args.instructions:
        if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
            parser.error("--instructions needs valgrind (apt-get install valgrind)")
        instructions(args.requests, "SQLite", None)
        if args.postgres:
            instructions(args.requests, "PostgreSQL", args.postgres)
        return 0
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
