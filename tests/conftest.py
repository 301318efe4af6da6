"""Fixtures: every database test runs on SQLite and, where ROSTER_TEST_POSTGRES_URL is set, on
PostgreSQL. Each test gets an organization of its own, so tests never see each other's users."""

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from roster.settings import get_settings
from roster.store import tenants
from roster.store.db import create_engine, dispose, migrate, scratch_postgres, writing

if TYPE_CHECKING:
    from tests.oidc_provider import OpenIdProvider

POSTGRES_URL = os.environ.get("ROSTER_TEST_POSTGRES_URL")
# The test OpenID provider listens on loopback, which Roster refuses unless told (every Settings
# and every `roster serve` the tests start reads this); tests of the refusal say so themselves.
os.environ["ROSTER_SSO_PRIVATE_ADDRESSES"] = "true"
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="ROSTER_TEST_POSTGRES_URL is not set"),
    ),
]


def _scratch_postgres() -> Iterator[str]:
    """A database of its own for this test run, dropped afterwards."""
    assert POSTGRES_URL
    with scratch_postgres(POSTGRES_URL, "roster_test") as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'roster.db'}"
    else:
        yield from _scratch_postgres()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await dispose(engine)


@pytest.fixture
async def tenant(engine: AsyncEngine) -> tenants.Tenant:
    async with writing(engine) as conn:
        return await tenants.create(conn, f"t-{uuid.uuid4().hex[:10]}", "Test organization")


@pytest.fixture
def cli_env(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The environment a `roster` command needs to use the test database."""
    monkeypatch.setenv("ROSTER_DATABASE_URL", database_url)
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield {**os.environ}
    get_settings.cache_clear()


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def openid_provider() -> Iterator["OpenIdProvider"]:
    """A real OpenID provider on loopback (tests/oidc_provider.py), for the whole session."""
    from tests.oidc_provider import running

    with running() as provider:
        yield provider
