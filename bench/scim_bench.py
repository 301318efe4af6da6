"""SCIM benchmark: `roster serve` under userName-eq lookups, creates and patches, next to a bare
FastAPI JSON endpoint as the ceiling.

    .venv/bin/python bench/scim_bench.py [--users N] [--seconds S] [--connections C]
                                         [--postgres URL] [--driver auto|wrk|httpx]
                                         [--profile DIR]

Each backend gets its own real `roster serve` subprocess (one uvicorn worker, as it runs) on a free
loopback port: SQLite in a fresh file, PostgreSQL (when a URL is given) in a scratch database
created and dropped here. The organization, its token and N users (a CSV import) come from the
CLI; the per-token rate limit is lifted, since the service is what is measured. A driver with C
connections then runs each workload for S seconds, after a second of warm-up: wrk (one thread,
bench/scim_wrk.lua varies the userNames and writes the bodies) when /usr/bin/wrk exists, else an
async httpx driver. The driver shares the machine's cores with the server; wrk takes a small
share of one, httpx most of one, so httpx figures are a floor of what the server could do. The
CPU columns tell which side was the limit. --profile records the server with py-spy during each
workload. Exit status 1 when any request failed (a non-2xx status or a transport error): those
are bugs.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from roster.store.db import scratch_postgres

SLUG = "bench"
SCIM = "/scim/v2"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"
WRK = Path("/usr/bin/wrk")
WRK_SCRIPT = Path(__file__).with_name("scim_wrk.lua")
BIN = Path(sys.executable).parent
WARMUP_SECONDS = 1.0
PATCH_IDS = 1000
TARGET_LOOKUP_RPS = 2000.0
TARGET_LOOKUP_P99_MS = 50.0
TARGET_POST_RPS = 1000.0
TARGETS = (
    "targets (2 cores, one worker): userName eq >= 2,000 req/s on PostgreSQL with p99 < 50 ms; "
    "POST >= 1,000/s"
)

FIRST_NAMES = ("Jan", "Anna", "Jurgen", "Zoe", "Soren", "Lukasz", "Jose", "Fatima", "Emma", "Noah")
SURNAMES = ("Jansen", "de Vries", "Bakker", "Muller", "Nowak", "Garcia", "Visser", "Smit")
TITLES = ("Manager", "Engineer", "Teamleider", "Consultant", "Adviseur", "Stagiair", "Directeur")
DEPARTMENTS = ("Support", "Finance", "IT", "Logistiek", "Verkoop", "Facilitair")
CSV_COLUMNS = (
    "CSV_USERNAME", "CSV_FIRSTNAME", "CSV_SURNAME", "CSV_DISPLAYNAME", "CSV_TITLE", "CSV_PHONE",
    "CSV_MOBILE", "CSV_DEPARTMENT", "CSV_EMAIL", "CSV_EHBO", "CSV_BHV", "CSV_PROFILEPHOTO",
)  # fmt: skip

CEILING_APP = """
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


DRIVERS = {
    "wrk": "wrk (one thread, bench/scim_wrk.lua)",
    "httpx": "one async httpx driver process",
}


def say(backend: str, what: str, text: str) -> None:
    print(f"{backend:<10} {what:<18} {text}", flush=True)


# Subprocesses: the CLI, the servers, and stopping them whatever happens.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def roster_env(database_url: str, directory: Path, port: int) -> dict[str, str]:
    return os.environ | {
        "ROSTER_DATABASE_URL": database_url,
        "ROSTER_DATA_DIR": str(directory),
        "ROSTER_HTTP_PORT": str(port),
        "ROSTER_SFTP_PORT": str(free_port()),
        "ROSTER_LOG_LEVEL": "WARNING",
        # The service, not the per-token limiter (200/s by default), is what is measured here.
        "ROSTER_SCIM_RATE_LIMIT": "1000000",
    }


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "roster", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"roster {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up:\n{log_tail(log)}") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running(
    args: list[str], env: dict[str, str], ready_url: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready_url, process, log)
        yield process
    finally:
        stop(process)


# The preload: N users in the CSV template's format, imported through the CLI.


def person(n: int, rng: random.Random) -> tuple[str, ...]:
    first, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    login = f"{first}.{surname.replace(' ', '')}.{n}".lower()
    return (
        f"{login}@contoso.example.com",
        first,
        surname,
        f"{first} {surname}"[:20],
        rng.choice(TITLES),
        f"+31 20 {rng.randrange(10**6, 10**7)}",
        f"06-{rng.randrange(10**7, 10**8)}",
        rng.choice(DEPARTMENTS),
        f"{login}@example.com",
        rng.choice("01"),
        rng.choice("01"),
        "",
    )


def write_csv(path: Path, count: int) -> list[str]:
    """The file, and the usernames in it."""
    rng = random.Random(20240601)
    rows = [CSV_COLUMNS, *(person(n, rng) for n in range(count))]
    lines = (";".join('"' + value.replace('"', '""') + '"' for value in row) for row in rows)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return [row[0] for row in rows[1:]]


@dataclass(frozen=True)
class Preload:
    token: str
    usernames: list[str]
    import_seconds: float


def prepare(env: dict[str, str], directory: Path, count: int) -> Preload:
    """The organization, a token and `count` users."""
    cli(env, "tenant", "create", SLUG, "--name", "Bench organization")
    token = cli(env, "scim", "token", "create", "--tenant", SLUG, "--name", "bench").strip()
    source = directory / "users.csv"
    usernames = write_csv(source, count)
    start = time.perf_counter()
    cli(env, "import", str(source), "--tenant", SLUG, "--mode", "add", "--quiet")
    return Preload(token, usernames, time.perf_counter() - start)


# The driver: C workers, each with its own client holding one keep-alive connection, sending
# until the time is up. One shared pool of C connections would be the obvious shape, but
# httpcore's pool re-checks every connection (a getpeername and a poll each) whenever a request
# starts or ends: at 50 connections that alone cut the driver to a quarter of its rate.


def fail_fast_without_sniffio() -> None:
    """httpcore runs `import sniffio` on every request; anyio 4 no longer brings sniffio, and a
    failed import is not cached, so each request searched sys.path again (about 1 ms of the
    driver's CPU a request here). Recording the absence once keeps the outcome ("asyncio")."""
    if importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str] | None = None
    body: bytes | None = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    def fail(self, what: str, detail: str) -> None:
        self.failures[what] += 1
        self.samples.setdefault(what, detail[:300])


@dataclass(frozen=True)
class Result:
    """One workload's figures, whichever driver produced them."""

    name: str
    ok: int  # 2xx responses
    failures: Counter[str]
    samples: dict[str, str]  # a response body per kind of failure (httpx only)
    p50_ms: float
    p99_ms: float
    elapsed: float
    server_cpu: float | None  # seconds of the server process's CPU time (Linux)
    driver_cpu: float
    host_busy: float | None  # share of all the machine's cores busy, whoever used them

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def server_share(self) -> str:
        return "-" if self.server_cpu is None else f"{self.server_cpu / self.elapsed:.0%}"

    def server_ms(self) -> str:
        if self.server_cpu is None or not self.ok:
            return "-"
        return f"{self.server_cpu * 1000 / (self.ok + self.failed):.3f}"

    def line(self) -> str:
        return (
            f"{self.rps:7,.0f} req/s | p50 {self.p50_ms:6.1f} ms | "
            f"p99 {self.p99_ms:6.1f} ms | {self.ok:6,} ok | {self.failed:,} failed | "
            f"CPU server {self.server_share()} ({self.server_ms()} ms/req), "
            f"driver {self.driver_cpu / self.elapsed:.0%}, host {self.host_share()}"
        )

    def host_share(self) -> str:
        return "-" if self.host_busy is None else f"{self.host_busy:.0%}"


def percentile_ms(latencies: list[float], fraction: float) -> float:
    ordered = sorted(latencies)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process, from /proc (None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    after_name = stat.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def host_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat (None elsewhere)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


@dataclass(frozen=True)
class Clocks:
    """CPU clocks read around a run: the server process's, the driver's, the machine's."""

    server: float | None
    driver: float
    host: tuple[int, int] | None

    @classmethod
    def read(cls, server_pid: int) -> "Clocks":
        return cls(cpu_seconds(server_pid), time.process_time(), host_ticks())

    def server_since(self, start: "Clocks") -> float | None:
        if self.server is None or start.server is None:
            return None
        return self.server - start.server

    def host_since(self, start: "Clocks") -> float | None:
        if self.host is None or start.host is None or self.host[1] == start.host[1]:
            return None
        return (self.host[0] - start.host[0]) / (self.host[1] - start.host[1])


async def worker(
    client: httpx.AsyncClient, make: Callable[[], Call], deadline: float, tally: Tally
) -> None:
    while time.perf_counter() < deadline:
        call = make()
        start = time.perf_counter()
        try:
            response = await client.request(
                call.method, call.path, params=call.params, content=call.body
            )
        except httpx.HTTPError as error:
            tally.fail(type(error).__name__, repr(error))
            continue
        if response.is_success:
            tally.latencies.append(time.perf_counter() - start)
        else:
            tally.fail(f"HTTP {response.status_code}", response.text)


async def drive(
    clients: list[httpx.AsyncClient], make: Callable[[], Call], seconds: float
) -> tuple[Tally, float]:
    tally = Tally()
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(worker(client, make, deadline, tally) for client in clients))
    return tally, time.perf_counter() - start


@asynccontextmanager
async def clients(
    base_url: str, token: str | None, connections: int
) -> AsyncIterator[list[httpx.AsyncClient]]:
    headers = {"Content-Type": SCIM_JSON, "Accept": SCIM_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    context = ssl.create_default_context()  # unused on http://, but each client would load one
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base_url, headers=headers, limits=one, timeout=60, verify=context
                )
            )
            for _ in range(connections)
        ]


@dataclass(frozen=True)
class Settings:
    connections: int
    seconds: float
    profile_dir: Path | None
    driver: str  # "wrk" or "httpx"


async def measure(
    pool: list[httpx.AsyncClient], name: str, make: Callable[[], Call], server: int, seconds: float
) -> Result:
    """A warm-up (connections opened, caches filled), then the measured run."""
    await drive(pool, make, min(WARMUP_SECONDS, seconds))
    start = Clocks.read(server)
    tally, elapsed = await drive(pool, make, seconds)
    end = Clocks.read(server)
    return Result(
        name,
        len(tally.latencies),
        tally.failures,
        tally.samples,
        percentile_ms(tally.latencies, 0.5),
        percentile_ms(tally.latencies, 0.99),
        elapsed,
        end.server_since(start),
        end.driver - start.driver,
        end.host_since(start),
    )


# The wrk driver: a C program with one thread, far cheaper per request than httpx, so the
# server gets nearly all of a core; bench/scim_wrk.lua makes each request's URL and body.


def children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def wrk_run(
    url: str, mode: str, token: str, items: Path, run: str, connections: int, seconds: int
) -> dict[str, int]:
    args = [str(WRK), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    args += ["-s", str(WRK_SCRIPT), url, "--", mode, token, str(items), run]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    summary = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not summary:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    figures: dict[str, int] = json.loads(summary[-1])
    return figures


def wrk_measure(
    name: str, url: str, mode: str, token: str, items: list[str], settings: Settings, pid: int
) -> Result:
    """wrk's warm-up and run of one workload, with the same clocks as the httpx driver."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(items) + "\n")
        listing.flush()
        items_file = Path(listing.name)
        run = uuid.uuid4().hex[:6]
        wrk_run(url, mode, token, items_file, f"w{run}", settings.connections, 1)
        start, driver = Clocks.read(pid), children_cpu()
        seconds = max(1, round(settings.seconds))
        figures = wrk_run(url, mode, token, items_file, run, settings.connections, seconds)
        end, driver = Clocks.read(pid), children_cpu() - driver
    failures: Counter[str] = Counter()
    for what in ("non_2xx", "connect", "read", "write", "timeout"):
        if figures[what]:
            failures["HTTP non-2xx" if what == "non_2xx" else f"socket {what}"] = figures[what]
    ok = figures["requests"] - figures["non_2xx"]  # socket errors are not counted as requests
    return Result(
        name,
        ok,
        failures,
        dict.fromkeys(failures, "(wrk keeps no bodies; --driver httpx shows them)"),
        figures["p50_us"] / 1000,
        figures["p99_us"] / 1000,
        figures["duration_us"] / 1e6,
        end.server_since(start),
        driver,
        end.host_since(start),
    )


# The workloads.


def lookup(usernames: list[str], rng: random.Random) -> Callable[[], Call]:
    def make() -> Call:
        wanted = rng.choice(usernames)
        return Call("GET", f"{SCIM}/Users", {"filter": f'userName eq "{wanted}"'})

    return make


def creation(rng: random.Random) -> Callable[[], Call]:
    run = uuid.uuid4().hex[:6]
    numbers = iter(range(10**9))

    def make() -> Call:
        n = next(numbers)
        first, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        login = f"scim.{run}.{n}"
        body = {
            "schemas": [USER_SCHEMA],
            "externalId": login,
            "userName": f"{login}@contoso.example.com",
            "active": True,
            "displayName": f"{first} {surname}"[:20],
            "name": {"givenName": first, "familyName": surname},
            "emails": [{"primary": True, "type": "work", "value": f"{login}@example.com"}],
        }
        return Call("POST", f"{SCIM}/Users", body=json.dumps(body).encode())

    return make


def patching(ids: list[str], rng: random.Random) -> Callable[[], Call]:
    def make() -> Call:
        title = f"{rng.choice(TITLES)} {rng.randrange(1000)}"
        operation = {"op": "Replace", "path": "title", "value": title}
        body = {"schemas": [PATCH_SCHEMA], "Operations": [operation]}
        return Call("PATCH", f"{SCIM}/Users/{rng.choice(ids)}", body=json.dumps(body).encode())

    return make


async def user_ids(client: httpx.AsyncClient, wanted: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < wanted:
        params = {"startIndex": str(len(ids) + 1), "count": "200", "attributes": "id"}
        response = await client.get(f"{SCIM}/Users", params=params)
        response.raise_for_status()
        page = [resource["id"] for resource in response.json().get("Resources", [])]
        if not page:
            break
        ids += page
    if not ids:
        raise RuntimeError("GET /Users listed no users to patch")
    return ids[:wanted]


# Profiling the server with py-spy, when asked.


def py_spy() -> str | None:
    return shutil.which("py-spy", path=os.pathsep.join((str(BIN), os.environ.get("PATH", ""))))


@contextmanager
def profiling(settings: Settings, pid: int, label: str) -> Iterator[None]:
    """py-spy's samples of the server over the warm-up and the run, in its raw (collapsed
    stacks) format: one line per distinct stack, ending in its sample count."""
    spy = py_spy()
    if settings.profile_dir is None or spy is None:
        yield
        return
    target = settings.profile_dir / f"{label}.txt"
    duration = str(max(1, round(settings.seconds + WARMUP_SECONDS)))
    args = [spy, "record", "--pid", str(pid), "--format", "raw", "-o", str(target)]
    process = subprocess.Popen(
        [*args, "--duration", duration], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.wait(timeout=60)
        print(f"{'':<10} {'':<18} py-spy profile: {target}", flush=True)


# One backend.


WORKLOADS = ("userName eq", "POST /Users", "PATCH /Users/{id}")


async def httpx_workloads(
    backend: str, base_url: str, preload: Preload, settings: Settings, pid: int
) -> list[Result]:
    rng = random.Random(7)
    async with clients(base_url, preload.token, settings.connections) as pool:
        ids = await user_ids(pool[0], PATCH_IDS)
        makers = (lookup(preload.usernames, rng), creation(rng), patching(ids, rng))
        results = []
        for name, make in zip(WORKLOADS, makers, strict=True):
            with profiling(settings, pid, label(backend, name)):
                result = await measure(pool, name, make, pid, settings.seconds)
                say(backend, name, result.line())
            results.append(result)
    return results


async def patch_ids(base_url: str, token: str) -> list[str]:
    async with clients(base_url, token, 1) as pool:
        return await user_ids(pool[0], PATCH_IDS)


def wrk_workloads(
    backend: str, base_url: str, preload: Preload, settings: Settings, pid: int
) -> list[Result]:
    ids = asyncio.run(patch_ids(base_url, preload.token))
    modes = (("lookup", preload.usernames), ("create", [""]), ("patch", ids))
    results = []
    for name, (mode, items) in zip(WORKLOADS, modes, strict=True):
        with profiling(settings, pid, label(backend, name)):
            result = wrk_measure(name, base_url, mode, preload.token, items, settings, pid)
            say(backend, name, result.line())
        results.append(result)
    return results


def label(backend: str, workload: str) -> str:
    return f"{backend}-{workload.split()[0]}".lower().replace(" ", "-")


def run_backend(backend: str, database_url: str, args: argparse.Namespace) -> list[Result]:
    settings = Settings(args.connections, args.seconds, args.profile, args.driver)
    with tempfile.TemporaryDirectory(prefix="roster-scim-bench-") as temporary:
        directory = Path(temporary)
        port = free_port()
        env = roster_env(database_url, directory, port)
        preload = prepare(env, directory, args.users)
        seconds = preload.import_seconds
        say(backend, "preload", f"{args.users:,} users by CSV import in {seconds:.1f} s")
        base_url = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "roster", "serve"]
        with running(serve, env, f"{base_url}/healthz", directory / "serve.log") as server:
            if settings.driver == "wrk":
                return wrk_workloads(backend, base_url, preload, settings, server.pid)
            return asyncio.run(httpx_workloads(backend, base_url, preload, settings, server.pid))


def run_sqlite(args: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="roster-scim-sqlite-") as temporary:
        return run_backend("SQLite", f"sqlite:///{Path(temporary) / 'roster.db'}", args)


def run_postgres(args: argparse.Namespace) -> list[Result]:
    with scratch_postgres(args.postgres, "roster_scim_bench") as url:
        return run_backend("PostgreSQL", url, args)


async def ceiling_workload(base_url: str, settings: Settings, pid: int) -> Result:
    async with clients(base_url, None, settings.connections) as pool:
        return await measure(pool, "ceiling", lambda: Call("GET", "/ping"), pid, settings.seconds)


def run_ceiling(args: argparse.Namespace) -> Result:
    settings = Settings(args.connections, args.seconds, None, args.driver)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="roster-scim-ceiling-") as temporary:
        command = [sys.executable, "-c", CEILING_APP, str(port)]
        log = Path(temporary) / "log"
        with running(command, dict(os.environ), f"{base_url}/ping", log) as server:
            if settings.driver == "wrk":
                url = f"{base_url}/ping"
                result = wrk_measure("ceiling", url, "plain", "", [], settings, server.pid)
            else:
                result = asyncio.run(ceiling_workload(base_url, settings, server.pid))
            say("FastAPI", "GET /ping", result.line())
    return result


# The report.


def target(backend: str, result: Result) -> str:
    p99 = result.p99_ms
    if result.name == "userName eq" and backend == "PostgreSQL":
        ok = result.rps >= TARGET_LOOKUP_RPS and p99 < TARGET_LOOKUP_P99_MS
        return f">= 2,000/s, p99 < 50 ms: {'met' if ok else 'MISSED'}"
    if result.name == "POST /Users":
        return f">= 1,000/s: {'met' if result.rps >= TARGET_POST_RPS else 'MISSED'}"
    return ""


HEADER = (
    "workload", "backend", "req/s", "p50 ms", "p99 ms", "failed", "srv CPU", "ms/req", "drv CPU",
    "host",
)  # fmt: skip


def row(cells: tuple[str, ...], goal: str = "") -> str:
    return f"{cells[0]:<19}{cells[1]:<13}" + "".join(f"{c:>9}" for c in cells[2:]) + f"  {goal}"


def cells(workload: str, backend: str, result: Result) -> tuple[str, ...]:
    return (
        workload,
        backend,
        f"{result.rps:,.0f}",
        f"{result.p50_ms:.1f}",
        f"{result.p99_ms:.1f}",
        f"{result.failed:,}",
        result.server_share(),
        result.server_ms(),
        f"{result.driver_cpu / result.elapsed:.0%}",
        result.host_share(),
    )


def print_table(
    results: dict[str, list[Result]], ceiling: Result, args: argparse.Namespace
) -> None:
    print(
        f"\nSCIM with {args.users:,} users preloaded, {args.connections} connections, "
        f"{args.seconds:g} s per workload, driven by {DRIVERS[args.driver]} on the same "
        f"{os.cpu_count()} cores as the server"
    )
    print(TARGETS)
    print(row(HEADER, "target"))
    for index, workload in enumerate(WORKLOADS):
        for backend, figures in results.items():
            result = figures[index]
            print(row(cells(workload, backend, result), target(backend, result)))
    print(row(cells("ceiling GET /ping", "bare FastAPI", ceiling), "(driver-bound if drv ~100%)"))
    print(f"command: {' '.join(sys.argv)}")
    print(
        "req/s and latencies count 2xx responses only; failed = non-2xx plus transport errors.\n"
        "Latency is measured in the driver, so it includes the driver's own queueing.\n"
        "srv CPU / drv CPU: CPU time of the server process / of the driver over the run's wall\n"
        "  time (100% = one core); ms/req: server CPU per request, PostgreSQL's own not included:\n"
        "  1000 / ms/req is what the one worker could serve with a core to itself.\n"
        "host: share of all cores busy during the run (server, driver, PostgreSQL, and anything\n"
        "  else on the machine)."
    )


def print_failures(results: dict[str, list[Result]]) -> int:
    """Each server's failed requests on stderr, by kind with a sample; how many runs failed."""
    failed = [(server, r) for server, figures in results.items() for r in figures if r.failed]
    for backend, result in failed:
        print(f"\nFAILED requests, {backend} {result.name}:", file=sys.stderr)
        for what, count in result.failures.most_common():
            print(f"  {count:>7,} x {what}: {result.samples[what]}", file=sys.stderr)
    return len(failed)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000, help="users preloaded")
    parser.add_argument("--seconds", type=float, default=10.0, help="per workload")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (postgresql://)")
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="the load generator: wrk when /usr/bin/wrk exists (auto), else async httpx",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="py-spy raw profiles of the server, into DIR"
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.connections < 1 or args.seconds <= 0:
        parser.error("--users, --connections and --seconds must be positive")
    if args.profile and py_spy() is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.driver == "auto":
        args.driver = "wrk" if WRK.exists() else "httpx"
    if args.driver == "wrk" and not WRK.exists():
        parser.error(f"--driver wrk needs {WRK} (apt-get install wrk)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fail_fast_without_sniffio()
    results = {"SQLite": run_sqlite(args)}
    if args.postgres:
        results["PostgreSQL"] = run_postgres(args)
    ceiling = run_ceiling(args)
    print_table(results, ceiling, args)
    return 1 if print_failures({**results, "FastAPI": [ceiling]}) else 0


if __name__ == "__main__":
    sys.exit(main())
