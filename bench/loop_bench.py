"""Event loop benchmark: the largest SCIM PATCH Roster accepts, sent to a real `roster serve`
while /healthz is asked every 50 ms; how long the PATCH takes and how long /healthz waits.

    .venv/bin/python bench/loop_bench.py [--postgres URL]

The PATCH holds the most operations allowed (ROSTER_SCIM_MAX_PATCH_OPERATIONS): one adds 2,000
e-mail addresses to a user, the others search them by a value filter, so it visits about as
many list elements as a PATCH may. Target: every /healthz answered within a second.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from roster.settings import Settings
from roster.store.db import scratch_postgres
from roster.web.scim.patch import PATCH_OP, WORK

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    token: str


@contextmanager
def serving(database_url: str, data_dir: Path) -> Iterator[Server]:
    """`roster serve` on free ports, with an organization and a SCIM token."""
    port = _free_port()
    env = {
        **os.environ,
        "ROSTER_DATABASE_URL": database_url,
        "ROSTER_DATA_DIR": str(data_dir),
        "ROSTER_HTTP_PORT": str(port),
        "ROSTER_SFTP_PORT": str(_free_port()),
        "ROSTER_SCIM_RATE_LIMIT": "100000",
    }
    roster = [sys.executable, "-m", "roster"]

    def command(*args: str) -> str:
        done = subprocess.run([*roster, *args], env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"roster {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    command("db", "upgrade")
    slug = f"loop-{uuid.uuid4().hex[:8]}"
    command("tenant", "create", slug, "--name", "Loop")
    token = command("scim", "token", "create", "--tenant", slug, "--name", "bench").strip()
    server = subprocess.Popen([*roster, "serve"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("roster serve did not start") from None
                time.sleep(0.2)
        yield Server(url, token)
    finally:
        server.terminate()
        server.wait(timeout=30)


def largest_patch() -> dict[str, object]:
    """A PATCH with the most operations allowed that visits about WORK list elements."""
    most = Settings().scim_max_patch_operations
    size = WORK // most - 2  # the list holds the user's own address too
    added = [{"value": f"a{i}@example.com", "type": "other"} for i in range(size)]
    operations: list[dict[str, object]] = [{"op": "add", "path": "emails", "value": added}]
    operations += [
        {"op": "remove", "path": f'emails[value eq "nobody{i}@example.com"]'}
        for i in range(most - 1)
    ]
    return {"schemas": [PATCH_OP], "Operations": operations}


@dataclass
class Figures:
    patch_status: int
    patch_seconds: float
    healthz_waits: list[float]


def measure(server: Server) -> Figures:
    """The largest PATCH, with /healthz asked every 50 ms while it runs."""
    scim = httpx.Client(
        base_url=f"{server.url}/scim/v2",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=120,
    )
    user = {
        "schemas": [USER],
        "userName": "loop.user",
        "name": {"givenName": "Loop", "familyName": "User"},
        "displayName": "Loop User",
        "emails": [{"value": "loop.user@example.com", "type": "work", "primary": True}],
        "active": True,
    }
    created = scim.post("/Users", json=user)
    created.raise_for_status()
    body, waits, done = largest_patch(), [], threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=30) as health:
            while not done.is_set():
                started = time.perf_counter()
                health.get(f"{server.url}/healthz").raise_for_status()
                waits.append(time.perf_counter() - started)
                time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    started = time.perf_counter()
    answer = scim.patch(f"/Users/{created.json()['id']}", json=body)
    took = time.perf_counter() - started
    done.set()
    poller.join()
    return Figures(answer.status_code, took, waits)


def report(label: str, figures: Figures) -> bool:
    waits = sorted(figures.healthz_waits)
    print(
        f"{label}: largest PATCH answered {figures.patch_status} in {figures.patch_seconds:.2f} s; "
        f"/healthz during it: {len(waits)} asked, median {waits[len(waits) // 2] * 1000:.0f} ms, "
        f"slowest {waits[-1] * 1000:.0f} ms"
    )
    return waits[-1] < 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="also measure on this PostgreSQL server")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'roster.db'}"
        with serving(url, Path(folder)) as server:
            ok &= report("SQLite", measure(server))
        if args.postgres:
            with (
                scratch_postgres(args.postgres, "roster_loop") as pg,
                serving(pg, Path(folder) / "pg") as server,
            ):
                ok &= report("PostgreSQL", measure(server))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
