"""Export benchmark: the user list of N users written by `roster users export` (a process of its
own, as a script runs it), and the audit log of the import that made them written as the
console's "Download as CSV" writes it, each with its time and peak RSS; then the round trip at
that size: a dry run of a replace with the exported file must change nothing.

    .venv/bin/python bench/export_bench.py [--users N] [--postgres URL] [--before-0019]

Each backend gets a fresh database (SQLite: a file; PostgreSQL: a scratch database) with two
organizations made by the CLI: one of N users (`bench/import_bench.py`'s people, imported with
`roster import --mode add`, not measured) and one of a single user, whose export is the
command's own start and memory. The audit log's file is written by `jobs/exports.audit_file` in
a child process (the console's code path, without HTTP) to /dev/null; the import wrote one event
of about a dozen changed fields per user, all with one time, so the file has a row per field
and its keyset pages all cut through events of one time. Peak RSS is ru_maxrss of each child.
The floor (SQLite): `python -c` reading the same users with sqlite3 in username order and
writing them with the csv module. `--before-0019` also times the audit log's file with its time
index as it was before migration 0019 (without `id`). Exit status 1 when the round trip changes
anything.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import import_bench
from import_bench import SLUG, person, postgres_database, roster, sqlite_database, write_csv

SMALL = "small"
AUDIT = """
import asyncio, os, resource, sys, time
from zoneinfo import ZoneInfo
from roster.jobs import exports
from roster.settings import get_settings
from roster.store import audit, tenants
from roster.store.db import create_engine, dispose

async def main():
    engine = create_engine(get_settings().resolved_database_url)
    async with engine.connect() as conn:
        tenant = await tenants.get(conn, sys.argv[1])
    started, lines, size = time.perf_counter(), 0, 0
    with open(os.devnull, "wb") as out:
        zone = ZoneInfo("Europe/Amsterdam")
        async for chunk in exports.audit_file(engine, tenant.id, audit.Filter(), zone, {}):
            out.write(chunk)
            lines, size = lines + chunk.count(b"\\r\\n"), size + len(chunk)
    print(time.perf_counter() - started, lines, size)
    await dispose(engine)

asyncio.run(main())
"""
SQL = """
import asyncio, sys
from sqlalchemy import text
from roster.settings import get_settings
from roster.store.db import create_engine, dispose

async def main():
    engine = create_engine(get_settings().resolved_database_url)
    async with engine.begin() as conn:
        for statement in sys.argv[1:]:
            await conn.execute(text(statement))
    await dispose(engine)

asyncio.run(main())
"""
# The audit log's time index as it was before migration 0019, and back.
WITHOUT_ID = (
    "DROP INDEX ix_audit_events_tenant_id_at_id",
    "CREATE INDEX ix_audit_events_tenant_id_at ON audit_events (tenant_id, at)",
)
WITH_ID = (
    "DROP INDEX ix_audit_events_tenant_id_at",
    "CREATE INDEX ix_audit_events_tenant_id_at_id ON audit_events (tenant_id, at, id)",
)
FLOOR = """
import csv, sqlite3, sys, time
started = time.perf_counter()
db = sqlite3.connect(sys.argv[1])
rows = db.execute(
    "SELECT username, first_name, surname, display_name, title, phone, mobile, department, "
    "email, first_aider, emergency_responder, profile_photo FROM users "
    "WHERE tenant_id = (SELECT tenant_id FROM tenants WHERE slug = 'bench') "
    "AND removed_at IS NULL AND managed_by != 'scim' ORDER BY username_key"
)
with open("/dev/null", "w", newline="") as out:
    csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL).writerows(rows)
print(time.perf_counter() - started)
"""


def child(script: str, args: list[str], env: dict[str, str]) -> tuple[list[str], float, float]:
    """A Python child running `script`: what it printed, its wall time and peak RSS (MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    printed = process.stdout.read().split()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{script.splitlines()[1]}... failed")
    return printed, time.perf_counter() - started, usage.ru_maxrss / 2**10


def environment(url: str, work: Path, largest: int) -> dict[str, str]:
    """This checkout's roster, the database, and a size limit that admits the file."""
    source = str(import_bench.SOURCE)
    return os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, (source, os.environ.get("PYTHONPATH")))),
        "ROSTER_DATABASE_URL": url,
        "ROSTER_DATA_DIR": str(work / "var"),
        "ROSTER_MAX_IMPORT_BYTES": str(max(import_bench.DEFAULT_MAX_IMPORT_BYTES, largest)),
    }


def one_backend(
    name: str, url: str, users: Path, count: int, work: Path, before_0019: bool
) -> bool:
    env = environment(url, work, users.stat().st_size)
    for slug in (SLUG, SMALL):
        roster(["tenant", "create", slug, "--name", slug], env)
    roster(["import", str(users), "--tenant", SLUG, "--mode", "add", "-q"], env)
    one = work / "one.csv"
    write_csv(one, [person(0, random.Random(1))])
    roster(["import", str(one), "--tenant", SMALL, "--mode", "add", "-q"], env)

    exported = work / "exported.csv"
    small = roster(["users", "export", "--tenant", SMALL, "--output", str(work / "s.csv")], env)
    done = roster(["users", "export", "--tenant", SLUG, "--output", str(exported)], env)
    size = exported.stat().st_size
    print(f"{name:<10} user list      {done.seconds:6.2f} s, CPU {done.cpu:5.2f} s, peak RSS "
          f"{done.peak_mb:4.0f} MB ({count:,} users, {size / 2**20:.1f} MiB); one user's: "
          f"{small.seconds:.2f} s, {small.peak_mb:.0f} MB", flush=True)  # fmt: skip
    if url.startswith("sqlite"):
        (floor,), wall, peak = child(FLOOR, [url.removeprefix("sqlite:///")], env)
        print(f"{name:<10} floor          {wall:6.2f} s, peak RSS {peak:4.0f} MB "
              f"(sqlite3 and csv alone; reading, writing {float(floor):.2f} s)")  # fmt: skip
    (seconds, lines, size), wall, peak = child(AUDIT, [SLUG], env)
    print(f"{name:<10} audit log      {float(seconds):6.2f} s (process {wall:.2f} s), peak "
          f"RSS {peak:4.0f} MB ({int(lines) - 1:,} rows, {int(size) / 2**20:.1f} MiB)",
          flush=True)  # fmt: skip
    if before_0019:
        child(SQL, list(WITHOUT_ID), env)
        (seconds, _, _), _, _ = child(AUDIT, [SLUG], env)
        child(SQL, list(WITH_ID), env)
        print(f"{name:<10} … before 0019  {float(seconds):6.2f} s (the time index without id)",
              flush=True)  # fmt: skip

    trip = roster(["import", str(exported), "--tenant", SLUG, "--mode", "replace", "--dry-run",
                   "--json", "-q"], env)  # fmt: skip
    report = json.loads(trip.stdout)
    counts = report["counts"]
    same = counts == {"added": 0, "updated": 0, "removed": 0, "unchanged": count, "invalid": 0}
    problems = report["error_count"] + report["warning_count"]
    print(f"{name:<10} round trip     {trip.seconds:6.2f} s: a replace with the file would "
          f"change {'nothing' if same else counts} ({report['error_count']} errors, "
          f"{report['warning_count']} warnings)")  # fmt: skip
    return same and not problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="users to export")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL")
    parser.add_argument(
        "--before-0019", action="store_true",
        help="also time the audit log with its time index as before migration 0019 (no id)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory(prefix="roster-export-bench-") as temporary:
        work = Path(temporary)
        users = work / "users.csv"
        rng = random.Random(20240501)
        write_csv(users, (person(n, rng) for n in range(args.users)))
        with sqlite_database(work) as url:
            ok = one_backend("SQLite", url, users, args.users, work, args.before_0019) and ok
        if args.postgres:
            with postgres_database(args.postgres) as url:
                ok = (
                    one_backend("PostgreSQL", url, users, args.users, work, args.before_0019) and ok
                )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
