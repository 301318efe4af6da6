"""SCIM next to python-scim's scim2-server: the workloads of bench/scim_bench.py against
scim2-server and against `roster serve`, on the same machine, and Roster's rate over its rate.

    .venv/bin/python bench/scim2_server_bench.py --scim2-server-python PYTHON
                                                 [--users N] [--seconds S] [--connections C]
                                                 [--postgres URL] [--driver auto|wrk|httpx]

scim2-server is no dependency of Roster; it runs from an interpreter of its own, given by
--scim2-server-python, whose environment has it installed, for instance:

    python3 -m venv /tmp/scim2srv && /tmp/scim2srv/bin/pip install scim2-server
    .venv/bin/python bench/scim2_server_bench.py --scim2-server-python /tmp/scim2srv/bin/python

This script downloads nothing. scim2-server runs as its README serves it: its `scim2-server`
command (in-memory storage on the standard library's threading WSGI server, which answers
HTTP/1.0 and so closes each connection after one response), with a static bearer token, and
with its tenant prefix `scim` so that its URLs are Roster's (`/scim/v2/Users`: its `/v2` is
optional). N users are created in it by POST (the people scim_bench.py imports into Roster), then
the driver runs the workloads of scim_bench.py for S seconds each after a second of warm-up:
userName eq lookups, POST creates, PATCHes of a title. Roster's figures come from scim_bench.py's
own run on SQLite (and PostgreSQL with --postgres). The table ends with Roster / scim2-server
for each workload; the target is at least twice for lookups and creates (issue 14). Exit status
1 when any request failed.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

import scim_bench
from scim_bench import (
    PATCH_IDS,
    SCIM,
    SCIM_JSON,
    USER_SCHEMA,
    WORKLOADS,
    WRK,
    Result,
    Settings,
    free_port,
    person,
    print_failures,
    running,
    say,
    wrk_measure,
)

COMMAND = "scim2-server"  # the console script pip installs beside the interpreter
TENANT = "scim"  # scim2-server serves a tenant under /TENANT, so its Users are at /scim/v2/Users
TOKEN = "scim2-server-bench"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PEOPLE_SEED = 20240601  # scim_bench.write_csv's seed: the same people as Roster's preload
PRELOAD_CONNECTIONS = 8
TARGET_RATIO = 2.0
TARGETED = ("userName eq", "POST /Users")
INSTALL = "python3 -m venv /tmp/scim2srv && /tmp/scim2srv/bin/pip install scim2-server"
THEM = "scim2-server"


# scim2-server: its version, its process, its preload.


def scim2_server_version(python: Path) -> str:
    """The installed scim2-server's version; exits with how to install it when it is missing."""
    asks = "import importlib.metadata as m; print(m.version('scim2-server'))"
    try:
        done = subprocess.run([str(python), "-c", asks], capture_output=True, text=True)
    except OSError as error:
        raise SystemExit(f"cannot run {python}: {error}") from None
    command = python.parent / COMMAND
    if done.returncode != 0 or not command.exists():
        raise SystemExit(
            f"{python} has no scim2-server ({command} missing or the package not installed);\n"
            f"install it into an environment of its own, e.g.: {INSTALL}"
        )
    return done.stdout.strip()


@contextmanager
def scim2_server(python: Path, port: int, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [str(python), str(python.parent / COMMAND), "--port", str(port)]
    command += ["--bearer-token", TOKEN, "--tenant", TENANT]
    ready = f"http://127.0.0.1:{port}{SCIM}/ServiceProviderConfig"
    with running(command, dict(os.environ), ready, directory / "scim2-server.log") as server:
        yield server


def scim_user(row: tuple[str, ...]) -> dict[str, object]:
    """One of scim_bench.py's CSV rows as a SCIM User, with the fields Roster's import keeps."""
    username, first, surname, display, title, phone, mobile, department, email = row[:9]
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": username,
        "active": True,
        "displayName": display,
        "name": {"givenName": first, "familyName": surname},
        "title": title,
        "phoneNumbers": [{"type": "work", "value": phone}, {"type": "mobile", "value": mobile}],
        "emails": [{"primary": True, "type": "work", "value": email}],
        ENTERPRISE: {"department": department},
    }


async def post_users(base_url: str, bodies: list[bytes]) -> list[str]:
    """POSTs every body over a few connections; the ids created, in the bodies' order."""
    ids = [""] * len(bodies)
    pending = iter(enumerate(bodies))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": SCIM_JSON}

    async def post_next(client: httpx.AsyncClient) -> None:
        for index, body in pending:
            response = await client.post(f"{SCIM}/Users", content=body)
            if response.status_code != 201:
                raise RuntimeError(f"preload POST: {response.status_code} {response.text[:300]}")
            ids[index] = response.json()["id"]

    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        await asyncio.gather(*(post_next(client) for _ in range(PRELOAD_CONNECTIONS)))
    return ids


def preload(base_url: str, count: int) -> tuple[list[str], list[str]]:
    """`count` users created by POST: their userNames and ids."""
    rng = random.Random(PEOPLE_SEED)
    rows = [person(n, rng) for n in range(count)]
    bodies = [json.dumps(scim_user(row)).encode() for row in rows]
    return [row[0] for row in rows], asyncio.run(post_users(base_url, bodies))


# The workloads against scim2-server, by the driver scim_bench.py would use.


def wrk_workloads(
    base_url: str, usernames: list[str], ids: list[str], settings: Settings, pid: int
) -> list[Result]:
    modes = (("lookup", usernames), ("create", [""]), ("patch", ids))
    results = []
    for name, (mode, items) in zip(WORKLOADS, modes, strict=True):
        result = wrk_measure(name, base_url, mode, TOKEN, items, settings, pid)
        say(THEM, name, result.line())
        results.append(result)
    return results


async def httpx_workloads(
    base_url: str, usernames: list[str], ids: list[str], settings: Settings, pid: int
) -> list[Result]:
    rng = random.Random(7)
    makers = (
        scim_bench.lookup(usernames, rng),
        scim_bench.creation(rng),
        scim_bench.patching(ids, rng),
    )
    results = []
    async with scim_bench.clients(base_url, TOKEN, settings.connections) as pool:
        for name, make in zip(WORKLOADS, makers, strict=True):
            result = await scim_bench.measure(pool, name, make, pid, settings.seconds)
            say(THEM, name, result.line())
            results.append(result)
    return results


def run_scim2_server(args: argparse.Namespace) -> list[Result]:
    settings = Settings(args.connections, args.seconds, None, args.driver)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    python = args.scim2_server_python
    with (
        tempfile.TemporaryDirectory(prefix="scim2-server-bench-") as temporary,
        scim2_server(python, port, Path(temporary)) as server,
    ):
        usernames, ids = preload(base_url, args.users)
        say(THEM, "preload", f"{args.users:,} users by POST")
        if settings.driver == "wrk":
            return wrk_workloads(base_url, usernames, ids[:PATCH_IDS], settings, server.pid)
        return asyncio.run(
            httpx_workloads(base_url, usernames, ids[:PATCH_IDS], settings, server.pid)
        )


# The report.


def ratios(roster: list[Result], theirs: list[Result]) -> Iterator[str]:
    for name, ours, them in zip(WORKLOADS, roster, theirs, strict=True):
        rate = ours.rps / them.rps if them.rps else float("inf")
        cost = "-"
        if ours.server_cpu and them.server_cpu and ours.ok and them.ok:
            ours_ms = ours.server_cpu / (ours.ok + ours.failed)
            theirs_ms = them.server_cpu / (them.ok + them.failed)
            cost = f"{theirs_ms / ours_ms:.1f}x"
        goal = ""
        if name in TARGETED:
            goal = f">= {TARGET_RATIO:g}x: {'met' if rate >= TARGET_RATIO else 'MISSED'}"
        yield f"  {name:<19}{rate:>7.1f}x req/s{cost:>9} CPU/req  {goal}"


def print_table(results: dict[str, list[Result]], version: str, args: argparse.Namespace) -> None:
    print(
        f"\nSCIM with {args.users:,} users preloaded, {args.connections} connections, "
        f"{args.seconds:g} s per workload, driven by {scim_bench.DRIVERS[args.driver]} on the "
        f"same {os.cpu_count()} cores as the servers; scim2-server {version}"
    )
    print(scim_bench.row(scim_bench.HEADER))
    for index, workload in enumerate(WORKLOADS):
        for server, figures in results.items():
            print(scim_bench.row(scim_bench.cells(workload, server, figures[index])))
    theirs = results[THEM]
    for server, figures in results.items():
        if server != THEM:
            print(f"{server} / scim2-server (CPU/req: scim2-server's server CPU per request")
            print("  over Roster's, PostgreSQL's own not included):")
            print("\n".join(ratios(figures, theirs)))
    print(f"command: {' '.join(sys.argv)}")
    print(
        "req/s and latencies count 2xx responses only; failed = non-2xx plus transport errors.\n"
        "scim2-server's command answers HTTP/1.0: every request of it opens a new connection.\n"
        "srv CPU: CPU time of the server process over the run's wall time (100% = one core);\n"
        "  ms/req: its CPU per request, PostgreSQL's own not included.\n"
        "host: share of all cores busy during the run, whoever used them."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scim2-server-python",
        type=Path,
        required=True,
        metavar="PYTHON",
        help=f"an interpreter whose environment has scim2-server installed ({INSTALL})",
    )
    parser.add_argument("--users", type=int, default=5_000, help="users preloaded")
    parser.add_argument("--seconds", type=float, default=10.0, help="per workload")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections")
    parser.add_argument(
        "--postgres", metavar="URL", help="Roster on PostgreSQL too (postgresql://)"
    )
    parser.add_argument(
        "--driver",
        choices=("auto", "wrk", "httpx"),
        default="auto",
        help="the load generator: wrk when /usr/bin/wrk exists (auto), else async httpx",
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.connections < 1 or args.seconds <= 0:
        parser.error("--users, --connections and --seconds must be positive")
    if args.driver == "auto":
        args.driver = "wrk" if WRK.exists() else "httpx"
    if args.driver == "wrk" and not WRK.exists():
        parser.error(f"--driver wrk needs {WRK} (apt-get install wrk)")
    args.profile = None  # scim_bench's run_sqlite and run_postgres read it
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version = scim2_server_version(args.scim2_server_python)
    scim_bench.fail_fast_without_sniffio()
    results = {THEM: run_scim2_server(args), "Roster SQLite": scim_bench.run_sqlite(args)}
    if args.postgres:
        results["Roster PG"] = scim_bench.run_postgres(args)
    print_table(results, version, args)
    return 1 if print_failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
