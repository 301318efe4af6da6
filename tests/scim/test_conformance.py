"""Independent SCIM conformance suites against a live `roster serve` on a loopback port.

Two suites from PyPI, neither written by us: scim2-tester (its `check_server`, driven through
scim2-client's httpx2 engine) and `scim-sanity probe`. Roster passes both whole: every check they
run passes. A check we deliberately do not support is listed in the README with the reason, and
in UNSUPPORTED below with the same reason; nothing else may fail. Each suite runs against a fresh
organization on SQLite and, where ROSTER_TEST_POSTGRES_URL is set, on a scratch PostgreSQL
database.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from tests.conftest import BACKENDS, _scratch_postgres, free_port

# scim2-tester's verdicts that pass: the MUSTs and SHOULDs are met, or a MAY is used reasonably.
# DEVIATION (a SHOULD not met), ERROR, CRITICAL and SKIPPED (a check not run) do not.
PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}

# Checks Roster deliberately does not support, each with the reason the README gives:
# a scim2-tester check title that may come back SKIPPED, a scim-sanity result name that may fail.
SCIM2_TESTER_UNSUPPORTED: dict[str, str] = {}
SCIM_SANITY_UNSUPPORTED: dict[str, str] = {
    "PATCH /Groups/{id} add member": (
        "a member id that is not a present user of the organization is a 400 invalidValue, "
        "never a silent link (the check adds the made-up id 'fake-member-id')"
    ),
}


@dataclass
class LiveServer:
    base_url: str
    token: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _roster(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "roster", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"roster {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _wait_until_healthy(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, f"roster serve exited:\n{log.read_text(errors='replace')}"
        try:
            if httpx2.get(url, timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        assert time.monotonic() < deadline, "roster serve did not answer /healthz in 60 s"
        time.sleep(0.2)


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`roster serve` on a free loopback port, with one organization and its SCIM token."""
    data_dir = tmp_path_factory.mktemp("conformance")
    # SQLite: the server's own roster.db under ROSTER_DATA_DIR; PostgreSQL: a scratch database.
    databases: Iterator[str] = iter([""]) if request.param == "sqlite" else _scratch_postgres()
    database_url = next(databases)
    try:
        port = free_port()
        env = {
            **os.environ,
            "ROSTER_DATA_DIR": str(data_dir),
            "ROSTER_DATABASE_URL": database_url,
            "ROSTER_HTTP_HOST": "127.0.0.1",
            "ROSTER_HTTP_PORT": str(port),
            "ROSTER_SFTP_PORT": str(free_port()),
            # The suites send as fast as answers come, beyond the default 200/s a token may
            # (test_users.py checks the limit and its 429); conformance is measured here.
            "ROSTER_SCIM_RATE_LIMIT": "100000",
        }
        slug = f"conf-{uuid.uuid4().hex[:8]}"
        _roster(env, "tenant", "create", slug, "--name", "Conformance suites")
        token = _roster(env, "scim", "token", "create", "--tenant", slug, "--name", "conformance")
        token = token.strip()
        assert token and "\n" not in token, f"expected the token alone on stdout, got {token!r}"

        log = data_dir / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "roster", "serve"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_healthy(server, f"http://127.0.0.1:{port}/healthz", log)
            yield LiveServer(f"http://127.0.0.1:{port}/scim/v2", token, log)
        finally:
            _stop(server)
    finally:
        next(databases, None)  # drops the scratch PostgreSQL database


def _shown(data: Any, limit: int = 1500) -> str:
    try:
        text = json.dumps(data, default=repr, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(data)
    return text if len(text) <= limit else text[:limit] + "…"


def _describe(result: CheckResult) -> str:
    summary = (result.description or "").strip().split("\n\n")[0]
    lines = [
        f"- [{result.status.name}] {result.resource_type or '-'} / {result.title}: "
        + " ".join(summary.split()),
        f"    reason: {result.reason}",
    ]
    if result.data is not None:
        lines.append(f"    data: {_shown(result.data)}")
    return "\n".join(lines)


def _tester_passed(result: CheckResult) -> bool:
    return result.status in PASSING or (
        result.status is Status.SKIPPED and result.title in SCIM2_TESTER_UNSUPPORTED
    )


def test_scim2_tester_check_server_passes_every_check(live: LiveServer) -> None:
    with httpx2.Client(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {live.token}"},
        timeout=30,
    ) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client)

    assert results, "check_server ran no check"
    failing = [result for result in results if not _tester_passed(result)]
    print(f"scim2-tester: {len(results) - len(failing)} of {len(results)} checks passed")
    assert not failing, (
        f"scim2-tester: {len(failing)} of {len(results)} checks did not pass:\n"
        + "\n".join(_describe(result) for result in failing)
        + f"\n\nroster serve log (tail):\n{live.log_tail()}"
    )


def test_scim_sanity_probe_passes(live: LiveServer) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_sanity",
            "probe",
            live.base_url,
            "--token",
            live.token,
            "--i-accept-side-effects",
            "--json-output",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"scim-sanity probe printed no JSON report:\n{output}")

    results = report.get("results", [])
    assert results, f"scim-sanity probe ran no check:\n{output}"
    failed = [r for r in results if r.get("status") in ("fail", "error")]
    failing = [r for r in failed if r.get("name") not in SCIM_SANITY_UNSUPPORTED]
    print(
        f"scim-sanity: {len(results) - len(failed)} of {len(results)} checks passed, "
        f"{len(failed)} failed ({len(failed) - len(failing)} of them the documented exception)"
    )
    listed = "\n".join(
        f"- [{r.get('status')}] {r.get('phase')} / {r.get('name')}: {r.get('message', '')}"
        for r in failing
    )
    assert not failing and (done.returncode == 0 or failed), (
        f"scim-sanity probe: {len(failing)} of {len(results)} checks did not pass "
        f"(summary {report.get('summary')}):\n{listed}\n\nfull report:\n{output}"
        f"\n\nroster serve log (tail):\n{live.log_tail()}"
    )
