"""Import benchmark: `roster import` as a user runs it (the CLI, a process of its own), a first
import of N users and a replace that adds 5 %, removes 5 % and changes 10 %, beside the floor.

    .venv/bin/python bench/import_bench.py [--users N] [--rounds R] [--postgres URL]
        [--dry-run] [--sqlite-dir DIR]

The floor is what any Python program pays for the same job: the start of
`python -c "import typer, rich, sqlalchemy, sqlite3"`, plus Python's `csv` module reading the same
file and `sqlite3` `executemany` of its 12 fields into one table with a unique key on
(organization, username), in one transaction (on PostgreSQL: `COPY` of the same rows). Each
import is timed from the command's start to its exit, with the peak RSS of its process; its
progress lines on stderr give the phases. SQLite always runs, in a fresh database file each round;
PostgreSQL when a URL is given, in a scratch database. `--dry-run` times only a dry run of the
first file (the memory of a large file: `--users 1000000 --dry-run`). Exit status 1 when an import
reports other counts than the files were built for. On SQLite it also prints the schema's own
cost: the rows the first import wrote, inserted again by SQLite alone (schema_write_seconds).
"""

import argparse
import csv
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

SLUG = "bench"
SOURCE = Path(__file__).resolve().parents[1] / "src"  # the roster measured (--source)
DEFAULT_MAX_IMPORT_BYTES = 50 * 1024 * 1024
BIN = Path(sys.executable).parent
START = [sys.executable, "-c", "import typer, rich, sqlalchemy, sqlite3"]
TARGET_RATIO = 3.0
TARGET_RSS_MB = {100_000: 250.0, 1_000_000: 1024.0}

COLUMNS = (
    "CSV_USERNAME", "CSV_FIRSTNAME", "CSV_SURNAME", "CSV_DISPLAYNAME", "CSV_TITLE", "CSV_PHONE",
    "CSV_MOBILE", "CSV_DEPARTMENT", "CSV_EMAIL", "CSV_EHBO", "CSV_BHV", "CSV_PROFILEPHOTO",
)  # fmt: skip
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


def write_csv(path: Path, rows: Iterable[dict[str, str]]) -> None:
    def line(values: Iterable[str]) -> str:
        return ";".join('"' + value.replace('"', '""') + '"' for value in values) + "\r\n"

    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(line(COLUMNS))
        out.writelines(line(row[c] for c in COLUMNS) for row in rows)


@dataclass(frozen=True)
class Scenario:
    users: int
    first: Path
    replace: Path
    expected_first: dict[str, int]
    expected_replace: dict[str, int]


def build_scenario(count: int, directory: Path) -> Scenario:
    rng = random.Random(20240501)
    dropped = range(0, count, 20)
    updated = range(1, count, 10)
    first, replace = directory / "users.csv", directory / "users-replace.csv"
    write_csv(first, (person(n, rng) for n in range(count)))
    rng = random.Random(20240501)  # the same people again, streamed
    kept = (
        changed(row, n) if n % 10 == 1 else row
        for n, row in ((n, person(n, rng)) for n in range(count))
        if n % 20 != 0
    )
    newcomers = (person(n, rng) for n in range(count, count + len(dropped)))
    write_csv(replace, (row for rows in (kept, newcomers) for row in rows))
    return Scenario(
        count,
        first,
        replace,
        {"added": count, "updated": 0, "removed": 0, "invalid": 0},
        {"added": len(dropped), "updated": len(updated), "removed": len(dropped), "invalid": 0},
    )


# The floor.


def start_seconds() -> tuple[float, float]:
    """The start of a Python program that imports what the CLI is built on: wall and CPU time."""
    started = time.perf_counter()
    process = subprocess.Popen(START)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{START} failed")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def file_rows(path: Path, organization: str) -> Iterator[list[str]]:
    """The file's rows by Python's csv module, the organization first."""
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source, delimiter=";")
        next(reader)
        for row in reader:
            yield [organization, *row]


FLOOR_COLUMNS = ("organization", *(c.removeprefix("CSV_").lower() for c in COLUMNS))


def sqlite_load_seconds(database: Path, source: Path) -> tuple[float, float]:
    """The file into one table, unique on (organization, username), in one transaction, with the
    journal Roster's own SQLite connections use (WAL, synchronous=NORMAL)."""
    columns = ", ".join(f"{name} TEXT" for name in FLOOR_COLUMNS)
    insert = f"INSERT INTO floor VALUES ({', '.join('?' * len(FLOOR_COLUMNS))})"
    with closing(sqlite3.connect(database, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"CREATE TABLE floor ({columns}, UNIQUE (organization, username))")
        started, cpu = time.perf_counter(), time.process_time()
        conn.execute("BEGIN")
        conn.executemany(insert, file_rows(source, "bench"))
        conn.execute("COMMIT")
        return time.perf_counter() - started, time.process_time() - cpu


def postgres_load_seconds(url: str, source: Path) -> tuple[float, float]:
    """The same rows by COPY (asyncpg) into a table of the same shape, in one transaction; the
    CPU time is this process's (the server's is not counted)."""
    import asyncio

    import asyncpg

    columns = ", ".join(f"{name} text" for name in FLOOR_COLUMNS)

    async def load() -> tuple[float, float]:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"CREATE TABLE floor ({columns}, UNIQUE (organization, username))")
            started, cpu = time.perf_counter(), time.process_time()
            async with conn.transaction():
                rows = ([value or None for value in row] for row in file_rows(source, "bench"))
                await conn.copy_records_to_table("floor", records=rows, columns=FLOOR_COLUMNS)
            seconds = time.perf_counter() - started, time.process_time() - cpu
            await conn.execute("DROP TABLE floor")
            return seconds
        finally:
            await conn.close()

    return asyncio.run(load())


@dataclass(frozen=True)
class Floor:
    start: float
    load: float
    cpu: float  # the CPU time of both

    @property
    def total(self) -> float:
        return self.start + self.load


# The imports, through the CLI.

PHASES = ("start", "parse", "plan", "apply", "finish")


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float  # user and system time of the process: steadier than wall time on a busy machine
    peak_mb: float
    phases: dict[str, float]
    report: dict[str, object]

    def line(self) -> str:
        phases = " | ".join(
            f"{name} {self.phases[name]:5.2f}" for name in PHASES if name in self.phases
        )
        return (
            f"{self.seconds:6.2f} s (CPU {self.cpu:5.2f} s), peak RSS {self.peak_mb:4.0f} MB "
            f"({phases})"
        )


def phases_of(moments: list[tuple[float, str]], started: float, ended: float) -> dict[str, float]:
    """Phases from the CLI's progress lines ("reading 0/1", "planning 1/1", "applying 2000/…"):
    start (the command's imports and the schema check), parse, plan (the organization's lock,
    reading the directory, the plan), apply, finish (the record, the commit, the statistics,
    the report printed, the exit)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for moment, line in moments:
        phase = line.split(" ", 1)[0]
        first.setdefault(phase, moment)
        last[phase] = moment
    if "reading" not in first or "planning" not in first:
        return {}
    applied = last.get("applying", last["planning"])
    return {
        "start": first["reading"] - started,
        "parse": last["reading"] - first["reading"],
        "plan": last["planning"] - first["planning"],
        "apply": applied - last["planning"],
        "finish": ended - applied,
    }


@dataclass(frozen=True)
class Finished:
    started: float
    ended: float
    cpu: float
    peak_mb: float
    moments: list[tuple[float, str]]  # stderr lines as they came
    stdout: str

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def roster(args: list[str], env: dict[str, str]) -> Finished:
    """Run one `roster` command as a user runs it, to its exit."""
    script = BIN / "roster"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "roster"]
    with tempfile.TemporaryFile() as stdout:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*command, *args], env=env, stdout=stdout, stderr=subprocess.PIPE, text=True
        )
        assert process.stderr is not None
        moments = [(time.perf_counter(), line.rstrip("\n")) for line in process.stderr]
        _, status, usage = os.wait4(process.pid, 0)  # its own rusage: the peak RSS
        ended = time.perf_counter()
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        printed = stdout.read().decode()
    if process.returncode not in (0, 1):
        said = "\n".join(line for _, line in moments[-20:])
        raise RuntimeError(f"roster {' '.join(args)} exited {process.returncode}:\n{said}")
    cpu = usage.ru_utime + usage.ru_stime
    return Finished(started, ended, cpu, usage.ru_maxrss / 2**10, moments, printed)


def imported(
    env: dict[str, str], path: Path, mode: str, expected: dict[str, int], dry_run: bool = False
) -> Run:
    args = ["import", str(path), "--tenant", SLUG, "--mode", mode, "--json"]
    args += ["--dry-run"] if dry_run else ["--force"] if mode == "replace" else []
    done = roster(args, env)
    report = json.loads(done.stdout)
    counts = report.get("counts", {})
    status = "dry_run" if dry_run else "applied"
    if report.get("status") != status or {name: counts.get(name) for name in expected} != expected:
        raise CountMismatch(
            f"{path.name} ({mode}): status {report.get('status')}, counts {counts}, expected "
            f"{expected}; first errors: {report.get('errors', [])[:3]}"
        )
    phases = phases_of(done.moments, done.started, done.ended)
    return Run(done.seconds, done.cpu, done.peak_mb, phases, report)


# One backend.


@dataclass(frozen=True)
class Round:
    floor: Floor
    first: Run
    replace: Run | None
    schema_writes: float | None = None  # SQLite: see schema_write_seconds


@dataclass(frozen=True)
class Backend:
    name: str
    database: Callable[[], AbstractContextManager[str]]  # a fresh, empty database's URL
    # the floor's load into a scratch database: wall and CPU time
    load_seconds: Callable[[str, Path], tuple[float, float]]
    # what the first import's rows cost the database alone (None: not measured)
    schema_writes: Callable[[str], float] | None = None


def environment(url: str, data_dir: Path, scenario: Scenario) -> dict[str, str]:
    """The command's environment: this checkout's roster (or --source's), the database, and a
    size limit that admits the files (the default one does up to about 380,000 rows)."""
    python_path = os.pathsep.join(filter(None, (str(SOURCE), os.environ.get("PYTHONPATH"))))
    largest = max(scenario.first.stat().st_size, scenario.replace.stat().st_size)
    return os.environ | {
        "PYTHONPATH": python_path,
        "ROSTER_DATABASE_URL": url,
        "ROSTER_DATA_DIR": str(data_dir),
        "ROSTER_MAX_IMPORT_BYTES": str(max(DEFAULT_MAX_IMPORT_BYTES, largest)),
    }


def say(backend: str, what: str, text: str) -> None:
    print(f"{backend:<10} {what:<13} {text}", flush=True)


def one_round(backend: Backend, scenario: Scenario, work: Path, dry_run: bool) -> Round:
    start, start_cpu = start_seconds()
    with backend.database() as url:
        env = environment(url, work / "var", scenario)
        roster(["tenant", "create", SLUG, "--name", "Bench organization"], env)
        load, load_cpu = backend.load_seconds(url, scenario.first)
        floor = Floor(start, load, start_cpu + load_cpu)
        say(backend.name, "floor", f"{floor.total:6.2f} s (CPU {floor.cpu:5.2f} s): start "
            f"{floor.start:.2f} + csv and load {floor.load:.2f}")  # fmt: skip
        first = imported(env, scenario.first, "add", scenario.expected_first, dry_run)
        say(backend.name, "dry run" if dry_run else "first import",
            f"{first.line()}  {first.seconds / floor.total:4.1f}x floor")  # fmt: skip
        if dry_run:
            return Round(floor, first, None)
        writes = backend.schema_writes(url) if backend.schema_writes else None
        if writes is not None:
            ratio = writes / floor.total
            say(backend.name, "schema writes", f"{writes:6.2f} s  {ratio:4.1f}x floor")
        second = imported(env, scenario.replace, "replace", scenario.expected_replace)
        say(backend.name, "replace", f"{second.line()}  {second.seconds / floor.total:4.1f}x floor")
        return Round(floor, first, second, writes)


@contextmanager
def sqlite_database(directory: Path) -> Iterator[str]:
    database = directory.resolve() / f"roster-bench-{uuid.uuid4().hex[:12]}.db"
    try:
        yield f"sqlite:///{database}"
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def sqlite_load(url: str, source: Path) -> tuple[float, float]:
    database = Path(url.removeprefix("sqlite:///"))
    floor_file = database.with_name(database.name + ".floor")
    try:
        return sqlite_load_seconds(floor_file, source)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{floor_file}{suffix}").unlink(missing_ok=True)


def schema_write_seconds(url: str) -> float:
    """What the rows a first import wrote cost SQLite alone: its users and audit events inserted
    again, row by row (`INSERT ... SELECT ... WHERE 1`: a bare SELECT * would let SQLite copy
    the b-trees whole), into a fresh file of Roster's own tables and indexes, with the journal
    and page cache of an import, in one transaction. The rows never pass through Python, so
    this process stays small (a child's peak RSS starts from its parent's)."""
    database = Path(url.removeprefix("sqlite:///"))
    copy = database.with_name(database.name + ".schema")
    tables = ("users", "audit_events")
    try:
        with closing(sqlite3.connect(copy, isolation_level=None)) as conn:
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-16384"):
                conn.execute(f"PRAGMA {pragma}")
            conn.execute("ATTACH DATABASE ? AS imported", (str(database),))
            ddl = conn.execute(
                "SELECT sql FROM imported.sqlite_master WHERE tbl_name IN (?, ?) "
                "AND sql IS NOT NULL ORDER BY type = 'index'",
                tables,
            ).fetchall()
            for (statement,) in ddl:
                conn.execute(statement)
            started = time.perf_counter()
            conn.execute("BEGIN")
            for table in tables:
                conn.execute(f"INSERT INTO main.{table} SELECT * FROM imported.{table} WHERE 1")
            conn.execute("COMMIT")
            return time.perf_counter() - started
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    sys.path.insert(0, str(SOURCE))
    from roster.store.db import scratch_postgres

    with scratch_postgres(url, "roster_bench") as scratch:
        yield scratch


# The report.


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def target_mb(users: int) -> float | None:
    return TARGET_RSS_MB.get(users)


def summary(name: str, rounds: list[Round], users: int) -> list[str]:
    floor = statistics.median(r.floor.total for r in rounds)
    start = statistics.median(r.floor.start for r in rounds)
    floor_cpu = statistics.median(r.floor.cpu for r in rounds)
    lines = [
        f"{name}: floor {floor:.2f} s (start {start:.2f} s; CPU {floor_cpu:.2f} s), "
        f"median of {len(rounds)}"
    ]
    limit = target_mb(users)
    kinds = [("first import", [r.first for r in rounds])]
    if rounds[0].replace is not None:
        kinds.append(("replace", [r.replace for r in rounds if r.replace is not None]))
    elif rounds[0].first.report.get("status") == "dry_run":
        kinds = [("dry run", [r.first for r in rounds])]
    for what, runs in kinds:
        run = median_run(runs)
        ratio = run.seconds / floor
        peak = max(r.peak_mb for r in runs)
        time_mark = "met" if ratio <= TARGET_RATIO else "MISSED"
        rss_mark = "" if limit is None else (" met" if peak < limit else " MISSED")
        cpu = statistics.median(r.cpu for r in runs)
        lines.append(
            f"  {what:<13} {run.seconds:6.2f} s = {ratio:4.1f}x floor [<= {TARGET_RATIO:.0f}x "
            f"{time_mark}]; CPU {cpu:.2f} s = {cpu / floor_cpu:.1f}x the floor's; "
            f"peak RSS {peak:.0f} MB" + ("" if limit is None else f" [< {limit:.0f} MB{rss_mark}]")
        )
        lines.append(
            "    " + " | ".join(f"{p} {run.phases[p]:.2f} s" for p in PHASES if p in run.phases)
        )
    writes = [r.schema_writes for r in rounds if r.schema_writes is not None]
    if writes:
        median = statistics.median(writes)
        lines.append(f"  schema writes {median:6.2f} s = {median / floor:4.1f}x floor")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="rows in the file")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each on a fresh database")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (postgresql://)")
    parser.add_argument("--dry-run", action="store_true", help="time a dry run of the first file")
    parser.add_argument("--sqlite-dir", type=Path, help="where the SQLite files go (temporary)")
    parser.add_argument(
        "--source", type=Path, help="the src folder of the roster to measure (this checkout's)"
    )
    args = parser.parse_args(argv)
    if args.users < 20:
        parser.error("--users must be at least 20")
    return args


def main(argv: list[str] | None = None) -> int:
    global SOURCE
    args = parse_args(argv)
    if args.source:
        SOURCE = args.source.resolve()
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as temporary:
        work = Path(temporary)
        scenario = build_scenario(args.users, work)
        sqlite_dir = args.sqlite_dir or work
        sqlite_dir.mkdir(parents=True, exist_ok=True)
        backends = [
            Backend(
                "SQLite", lambda: sqlite_database(sqlite_dir), sqlite_load, schema_write_seconds
            )
        ]
        if args.postgres:
            backends.append(
                Backend(
                    "PostgreSQL", lambda: postgres_database(args.postgres), postgres_load_seconds
                )
            )
        results: dict[str, list[Round]] = {b.name: [] for b in backends}
        try:
            for _ in range(args.rounds):
                for backend in backends:
                    results[backend.name].append(one_round(backend, scenario, work, args.dry_run))
        except CountMismatch as error:
            print(f"wrong counts: {error}", file=sys.stderr)
            return 1
    print(f"\nImport of {args.users:,} users through `roster import`:")
    for name, rounds in results.items():
        print("\n".join(summary(name, rounds, args.users)))
    print(
        'floor: the start of `python -c "import typer, rich, sqlalchemy, sqlite3"` plus csv\n'
        "  reading the file and executemany (sqlite3) or COPY (asyncpg) of its 12 fields into a\n"
        "  table unique on (organization, username), one transaction.\n"
        "schema writes: the users and audit events the first import wrote, inserted again row\n"
        "  by row by SQLite alone into Roster's own tables and indexes, one transaction.\n"
        "peak RSS: ru_maxrss of the roster process."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
