"""Drop box benchmark: an upload of a 100,000-user file to the applied directory, end to end.

    .venv/bin/python bench/sftp_bench.py [--users N] [--postgres URL]

A real `roster serve` (one process) runs on SQLite in a fresh file and, when a URL is given, on
PostgreSQL in a scratch database. The organization picks up on upload (no settling delay, a 0.2 s
scheduler tick). The OpenSSH `sftp` client uploads, with a key, first a file of N new users and
then the next day's export (5 % joiners, 5 % leavers, 10 % changed); each is timed from the
start of the upload until the import history shows it applied. Exit status 1 when an import
reports other counts than the file was built for.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from import_bench import build_scenario
from roster.store import imports, tenants
from roster.store.db import create_engine, scratch_postgres

SLUG = "bench"
FILE = "flexwhere - users.csv"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def roster(env: dict[str, str], *args: str) -> None:
    subprocess.run([BIN / "roster", *args], env=env, check=True, capture_output=True)


def wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("roster serve stopped")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


async def applied_after(url: str, seen: int, deadline: float) -> imports.ImportRecord:
    engine = create_engine(url)
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                tenant = await tenants.get(conn, SLUG)
                history = await imports.history(conn, tenant.id)
            if len(history) > seen:
                return history[0]
            await asyncio.sleep(0.05)
        raise SystemExit("no pickup within the deadline")
    finally:
        await engine.dispose()


def run(backend: str, url: str, users: int, work: Path) -> bool:
    scenario = build_scenario(users, work)
    data = work / "data"
    key = work / "uploader"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    sftp_port = free_port()
    env = os.environ | {
        "ROSTER_DATABASE_URL": url,
        "ROSTER_DATA_DIR": str(data),
        "ROSTER_HTTP_PORT": str(free_port()),
        "ROSTER_SFTP_PORT": str(sftp_port),
        "ROSTER_SCHEDULER_TICK_SECONDS": "0.2",
        "ROSTER_PICKUP_SETTLE_SECONDS": "0",
        "ROSTER_LOG_LEVEL": "WARNING",
    }
    roster(env, "tenant", "create", SLUG, "--name", "Benchmark")
    roster(env, "sftp", "enable", "--tenant", SLUG)
    roster(env, "sftp", "key", "add", "--tenant", SLUG, f"{key}.pub")
    roster(env, "sftp", "settings", "--tenant", SLUG, "--process-on-upload")
    server = subprocess.Popen(
        [BIN / "roster", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ok = True
    try:
        wait_for_port(sftp_port, server)
        steps = (
            ("first upload", scenario.first, scenario.expected_first),
            ("next day's export", scenario.replace, scenario.expected_replace),
        )
        for seen, (label, path, expected) in enumerate(steps):
            started = time.perf_counter()
            subprocess.run(
                [
                    "sftp", "-q", "-P", str(sftp_port), "-i", str(key), "-b", "-",
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    f"{SLUG}@127.0.0.1",
                ],
                input=f'put "{path}" "{FILE}"\n'.encode(),
                check=True,
                capture_output=True,
            )  # fmt: skip
            uploaded = time.perf_counter()
            record = asyncio.run(applied_after(url, seen, time.monotonic() + 600))
            done = time.perf_counter()
            counts = {k: record.counts.get(k, 0) for k in expected}
            good = record.status == "applied" and counts == expected
            ok &= good
            print(
                f"{backend:<10} | {label:<18} | {path.stat().st_size / 1e6:5.1f} MB | "
                f"upload {uploaded - started:5.2f} s | pickup+import {done - uploaded:6.2f} s | "
                f"end to end {done - started:6.2f} s | {record.status} {counts}"
                + ("" if good else f" EXPECTED {expected}"),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL to run against as well")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "sqlite"
        work.mkdir()
        ok &= run("SQLite", f"sqlite:///{work / 'roster.db'}", args.users, work)
    if args.postgres:
        with (
            scratch_postgres(args.postgres, "roster_bench") as url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            ok &= run("PostgreSQL", url, args.users, Path(tmp))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
