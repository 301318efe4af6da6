"""Import benchmark: a first import and a replace of N users through run_import, next to the
floor of loading the same rows with the database driver alone.

    .venv/bin/python bench/import_bench.py [--users N] [--postgres URL] [--sqlite-dir DIR]

Every measured step runs in a fresh child process, so each import's peak RSS is its own. SQLite
always runs, in a fresh database file; PostgreSQL runs when a URL is given, in a scratch database
created and dropped here. Exit status 1 when an import reports other counts than the files were
built for.
"""

import argparse
import asyncio
import multiprocessing
import random
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from roster.domain.fields import FIELDS, Field, Kind, key
from roster.domain.mode import Mode
from roster.jobs.imports import ImportReport, run_import
from roster.store import tenants
from roster.store.db import create_engine, migrate, scratch_postgres, writing
from roster.store.directory import search_text
from roster.store.schema import users

SLUG = "bench"
T = TypeVar("T")
COLUMNS = tuple(f.column for f in FIELDS)
TARGET_RATIO = 3.0
TARGET_RSS_MB = 400.0
TARGETS = "targets: replace within 3x floor plus parse time; peak < 400 MB"

FIRST_NAMES = (
    "Jan", "Anna", "Jürgen", "Zoë", "Søren", "Łukasz", "José", "Fatima", "Ayşe", "François",
    "Björn", "Chloé", "Mohammed", "Emma", "Noah", "Siobhán", "Inês", "Dmitri", "Mei", "Pieter",
)  # fmt: skip
SURNAMES = (
    "Jansen", "de Vries", "van den Berg", "Bakker", "Müller", "Ødegaard", "Nowak", "Dvořák",
    "García", "Öztürk", "Nguyễn", "Wiśniewska", "Visser", "O'Connor", "Kovačević", "Smit",
    "Lefèvre", "El Amrani", "Janssens", "Horváth",
)  # fmt: skip
TITLES = (
    "", "", "Manager", "Engineer", "Verpleegkundige", "Teamleider", "Consultant", "Stagiair",
    "Chef d'équipe", "Sachbearbeiterin", "Directeur",
)  # fmt: skip
DEPARTMENTS = (
    "", "Support", "Finance", "IT", "Logistiek", "Zorg & Welzijn", "Ressources humaines",
    "Forschung & Entwicklung", "Verkoop", "Facilitair",
)  # fmt: skip
DOMAINS = ("example.com", "acme.nl", "zorggroep-noord.nl", "example.org")
FLAGS = ("1", "0", "0", "0", "")
CHANGES = (
    ("CSV_TITLE", ("Interim manager", "Adviseur")),
    ("CSV_DEPARTMENT", ("Reorganisatie", "Projecten")),
    ("CSV_MOBILE", ("06-99999999", "06-88888888")),
    ("CSV_DISPLAYNAME", ("Nieuwe Naam", "Andere Naam")),
)
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "đ": "d"})


class CountMismatch(Exception):
    pass


# Generating the files (not measured).


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


def person(n: int, rng: random.Random) -> dict[str, str]:
    first, surname = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    login = f"{ascii_fold(first)[0]}{ascii_fold(surname)}{n}".lower()
    compact = surname.replace(" ", "").replace("'", "")
    native = f"{first[0]}{compact}{n}".lower()
    return {
        "CSV_USERNAME": native if n % 7 == 0 else login,
        "CSV_FIRSTNAME": first,
        "CSV_SURNAME": surname,
        "CSV_DISPLAYNAME": f"{first} {surname}"[:20].strip(),
        "CSV_TITLE": rng.choice(TITLES),
        "CSV_PHONE": "" if rng.random() < 0.3 else f"+31 20 {rng.randrange(10**6, 10**7)}",
        "CSV_MOBILE": "" if rng.random() < 0.2 else f"06-{rng.randrange(10**7, 10**8)}",
        "CSV_DEPARTMENT": rng.choice(DEPARTMENTS),
        "CSV_EMAIL": f"{ascii_fold(first)}.{ascii_fold(surname)}.{n}@{rng.choice(DOMAINS)}".lower(),
        "CSV_EHBO": rng.choice(FLAGS),
        "CSV_BHV": rng.choice(FLAGS),
        "CSV_PROFILEPHOTO": rng.choice(("", f"{login}.jpg", f"https://cdn.example.org/p/{n}.png")),
    }


def changed(row: dict[str, str], n: int) -> dict[str, str]:
    column, candidates = CHANGES[n % len(CHANGES)]
    new = next(value for value in candidates if value != row[column])
    return row | {column: new}


def csv_bytes(rows: Iterable[dict[str, str]]) -> bytes:
    def line(values: Iterable[str]) -> str:
        return ";".join('"' + value.replace('"', '""') + '"' for value in values)

    lines = [line(COLUMNS), *(line(row[c] for c in COLUMNS) for row in rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass(frozen=True)
class Scenario:
    users: int
    first: Path
    replace: Path
    expected_first: dict[str, int]
    expected_replace: dict[str, int]
    expected_revert: dict[str, int]


def build_scenario(count: int, directory: Path) -> Scenario:
    rng = random.Random(20240501)
    dropped = range(0, count, 20)
    updated = range(1, count, 10)
    people = [person(n, rng) for n in range(count + len(dropped))]
    kept = [
        changed(row, n) if n % 10 == 1 else row
        for n, row in enumerate(people[:count])
        if n % 20 != 0
    ]
    first, replace = directory / "users.csv", directory / "users-replace.csv"
    first.write_bytes(csv_bytes(people[:count]))
    replace.write_bytes(csv_bytes(kept + people[count:]))
    return Scenario(
        count,
        first,
        replace,
        {"added": count, "updated": 0, "removed": 0},
        {"added": len(dropped), "updated": len(updated), "removed": len(dropped)},
        {"added": len(dropped), "updated": len(updated), "removed": len(dropped)},
    )


# Timing imports.


@dataclass(frozen=True)
class Timing:
    total: float
    parse: float
    plan: float
    apply: float

    @property
    def other(self) -> float:
        return self.total - self.parse - self.plan - self.apply

    def line(self) -> str:
        return (
            f"parse {self.parse:6.2f} s | plan {self.plan:6.2f} s | apply {self.apply:6.2f} s | "
            f"other {self.other:5.2f} s | total {self.total:6.2f} s"
        )


@dataclass
class PhaseClock:
    """The progress callback: when each phase was first and last reported."""

    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)

    def __call__(self, phase: str, done: int, total: int) -> None:
        moment = time.perf_counter()
        self.first.setdefault(phase, moment)
        self.last[phase] = moment

    def timing(self, total: float) -> Timing:
        return Timing(
            total=total,
            parse=self.last["reading"] - self.first["reading"],
            plan=self.last["planning"] - self.first["planning"],
            apply=self.last["applying"] - self.last["planning"],
        )


async def timed_import(engine: AsyncEngine, path: Path, mode: Mode) -> tuple[ImportReport, Timing]:
    data = path.read_bytes()
    clock = PhaseClock()
    start = time.perf_counter()
    report = await run_import(
        engine,
        SLUG,
        data,
        mode=mode,
        channel="cli",
        actor="bench",
        file_name=path.name,
        force=mode is Mode.REPLACE,
        progress=clock,
    )
    return report, clock.timing(time.perf_counter() - start)


def check(report: ImportReport, expected: dict[str, int], what: str) -> None:
    got = {name: report.counts[name] for name in expected}
    if report.status != "applied" or got != expected or report.counts["invalid"]:
        first_errors = [issue.as_dict() for issue in report.errors[:3]]
        raise CountMismatch(
            f"{what}: status {report.status}, counts {report.counts}, expected {expected}; "
            f"first errors: {first_errors}"
        )


# The floor: the same rows, written by the driver alone into a table shaped like users.


def floor_table() -> sa.Table:
    table = sa.Table(
        "bench_floor",
        sa.MetaData(),
        *(sa.Column(c.name, c.type, nullable=c.nullable) for c in users.columns),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "username_key"),
    )
    for index in users.indexes:
        sa.Index(
            f"bench_floor_{index.name}",
            *(table.c[c.name] for c in index.columns),
            unique=index.unique,
            **index.dialect_kwargs,
        )
    return table


def floor_ddl(dialect: sa.Dialect) -> list[str]:
    table = floor_table()
    indexes = [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    return [str(CreateTable(table).compile(dialect=dialect)), *indexes]


def typed(spec: Field, raw: str) -> Any:
    if not raw:
        return None
    return raw == "1" if spec.kind is Kind.FLAG else raw


def floor_rows(path: Path) -> Iterator[dict[str, Any]]:
    tenant_id, at = uuid.uuid4(), datetime.now(UTC)
    for line in path.read_text("utf-8").splitlines()[1:]:
        raw = line[1:-1].split('";"')
        values = {spec.name: typed(spec, value) for spec, value in zip(FIELDS, raw, strict=True)}
        yield values | {
            "tenant_id": tenant_id,
            "id": uuid.uuid4(),
            "username_key": key(values["username"]),
            "email_key": key(values["email"]),
            "search_text": search_text(values),
            "extra": "{}",  # JSON text, as both drivers take it
            "active": True,
            "role": "user",
            "external_id": None,
            "managed_by": "cli",
            "created_at": at,
            "updated_at": at,
            "version": 1,
            "removed_at": None,
        }


def sqlite_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def sqlite_floor(database: Path, source: Path) -> float:
    names = [c.name for c in users.columns]
    rows = [tuple(sqlite_value(row[n]) for n in names) for row in floor_rows(source)]
    insert = f"INSERT INTO bench_floor VALUES ({', '.join('?' * len(names))})"
    with closing(sqlite3.connect(database, isolation_level=None)) as conn:
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in floor_ddl(sqlite_dialect.dialect()):
            conn.execute(statement)
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
        return time.perf_counter() - start


def postgres_floor(url: str, source: Path) -> float:
    names = [c.name for c in users.columns]
    rows = [tuple(row[n] for n in names) for row in floor_rows(source)]

    async def copy() -> float:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            for statement in floor_ddl(postgresql.dialect()):
                await conn.execute(statement)
            start = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table("bench_floor", records=rows, columns=names)
            return time.perf_counter() - start
        finally:
            await conn.close()

    return asyncio.run(copy())


# One backend: each step in a fresh process, so each import's peak RSS is its own.


@dataclass(frozen=True)
class Job:
    backend: str
    url: str
    scenario: Scenario
    traced: bool


@dataclass(frozen=True)
class Run:
    timing: Timing
    counts: dict[str, int]
    baseline_mb: float
    peak_mb: float


@dataclass(frozen=True)
class Figures:
    backend: str
    first: Run
    replace: Run
    floor: float
    traced_mb: float | None

    @property
    def ratio(self) -> float:
        return (self.replace.timing.total - self.replace.timing.parse) / self.floor


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def say(backend: str, what: str, text: str) -> None:
    print(f"{backend:<10} {what:<14} {text}", flush=True)


async def prepare(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with writing(engine) as conn:
            await tenants.create(conn, SLUG, "Bench organization")
    finally:
        await engine.dispose()


async def measured_import(
    job: Job, path: Path, mode: Mode, expected: dict[str, int], what: str
) -> Run:
    baseline = peak_rss_mb()
    engine = create_engine(job.url)
    try:
        report, timing = await timed_import(engine, path, mode)
    finally:
        await engine.dispose()
    check(report, expected, what)
    run = Run(timing, report.counts, baseline, peak_rss_mb())
    say(job.backend, what, f"{timing.line()} | peak RSS {run.peak_mb:.0f} MB")
    return run


def first_import(job: Job) -> Run:
    scenario = job.scenario
    return asyncio.run(
        measured_import(job, scenario.first, Mode.ADD, scenario.expected_first, "first import")
    )


def replace(job: Job) -> Run:
    scenario = job.scenario
    run = asyncio.run(
        measured_import(job, scenario.replace, Mode.REPLACE, scenario.expected_replace, "replace")
    )
    say(job.backend, "replace counts", str(run.counts))
    return run


async def traced_revert_async(job: Job) -> float:
    engine = create_engine(job.url)
    tracemalloc.start()
    try:
        report, timing = await timed_import(engine, job.scenario.first, Mode.REPLACE)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
        await engine.dispose()
    check(report, job.scenario.expected_revert, "traced replace (back to the first file)")
    say(job.backend, "traced replace", f"peak Python allocations {peak:.0f} MB ({timing.line()})")
    return peak


def traced_revert(job: Job) -> float:
    """A replace back to the first file under tracemalloc, which slows it several times."""
    return asyncio.run(traced_revert_async(job))


def in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """Run in a new interpreter; the caller stays small, since a child's ru_maxrss starts from
    its parent's peak."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(function, *args).result()


def load_floor(job: Job) -> float:
    if job.url.startswith("sqlite"):
        database = sa.engine.make_url(job.url).database
        assert database is not None
        seconds = sqlite_floor(Path(database), job.scenario.first)
    else:
        seconds = postgres_floor(job.url, job.scenario.first)
    say(job.backend, "floor", f"{seconds:.2f} s ({job.scenario.users:,} rows)")
    return seconds


def measure(job: Job) -> Figures:
    asyncio.run(prepare(job.url))
    first = in_fresh_process(first_import, job)
    second = in_fresh_process(replace, job)
    floor = in_fresh_process(load_floor, job)
    traced = in_fresh_process(traced_revert, job) if job.traced else None
    return Figures(job.backend, first, second, floor, traced)


def run_sqlite(scenario: Scenario, directory: Path) -> Figures:
    directory.mkdir(parents=True, exist_ok=True)
    database = directory.resolve() / f"roster-bench-{uuid.uuid4().hex[:12]}.db"
    try:
        return measure(Job("SQLite", f"sqlite:///{database}", scenario, traced=True))
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def run_postgres(scenario: Scenario, url: str) -> Figures:
    with scratch_postgres(url, "roster_bench") as scratch:
        return measure(Job("PostgreSQL", scratch, scenario, traced=False))


# The report.


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def timing_rows(label: str, run: Run) -> list[tuple[str, str]]:
    timing = run.timing
    return [
        (f"{label} total (s)", f"{timing.total:.2f}"),
        ("  decode+parse+validate (s)", f"{timing.parse:.2f}"),
        ("  plan (s)", f"{timing.plan:.2f}"),
        ("  apply (s)", f"{timing.apply:.2f}"),
        ("  other: tenant, record, commit (s)", f"{timing.other:.2f}"),
        ("  peak RSS (MB)  [< 400]", f"{run.peak_mb:.0f} {mark(run.peak_mb < TARGET_RSS_MB)}"),
    ]


def table_rows(figures: Figures) -> list[tuple[str, str]]:
    traced = "-" if figures.traced_mb is None else f"{figures.traced_mb:.0f}"
    ratio_ok = figures.ratio <= TARGET_RATIO
    return [
        ("process RSS before importing (MB)", f"{figures.first.baseline_mb:.0f}"),
        *timing_rows("first import", figures.first),
        *timing_rows("replace", figures.replace),
        ("floor (s)", f"{figures.floor:.2f}"),
        ("(replace - parse) / floor  [<= 3]", f"{figures.ratio:.1f}x {mark(ratio_ok)}"),
        ("replace peak Python allocations (MB)", traced),
    ]


def print_table(results: list[Figures], count: int) -> None:
    columns = [table_rows(figures) for figures in results]
    labels = [label for label, _ in columns[0]]
    width = max(map(len, labels)) + 2
    print(f"\nImport of {count:,} users; {TARGETS}")
    print(f"{'':<{width}}" + "".join(f"{f.backend:>16}" for f in results))
    for line, label in enumerate(labels):
        print(f"{label:<{width}}" + "".join(f"{column[line][1]:>16}" for column in columns))
    print(
        "floor: the same rows into a table shaped like users (same indexes), by executemany\n"
        "  (sqlite3, one transaction) or COPY (asyncpg); rows built before timing.\n"
        "peak RSS: ru_maxrss of a fresh process running only that import.\n"
        "Python allocations: tracemalloc peak over an extra replace (back to the first file),\n"
        "  on SQLite only, since tracing slows it several times."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="rows in the file")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (postgresql://)")
    parser.add_argument("--sqlite-dir", type=Path, help="where the SQLite file goes (temporary)")
    args = parser.parse_args(argv)
    if args.users < 20:
        parser.error("--users must be at least 20")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as temporary:
        directory = Path(temporary)
        scenario = in_fresh_process(build_scenario, args.users, directory)
        try:
            results = [run_sqlite(scenario, args.sqlite_dir or directory)]
            if args.postgres:
                results.append(run_postgres(scenario, args.postgres))
        except CountMismatch as error:
            print(f"wrong counts: {error}", file=sys.stderr)
            return 1
    print_table(results, args.users)
    return 0


if __name__ == "__main__":
    sys.exit(main())
