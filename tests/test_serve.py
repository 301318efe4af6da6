"""`roster serve` as a person starts it, and its health and readiness endpoints."""

import socket
import subprocess
import sys
import time

import httpx
import pytest
import sqlalchemy as sa

from roster.store.db import create_engine, migrate, newest_revision
from roster.web.app import create_app
from tests.conftest import free_port


async def test_healthz_reports_the_database(engine):
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == "ok"


async def test_healthz_is_503_when_the_database_is_gone():
    dead = create_engine("postgresql://nobody@127.0.0.1:1/none")
    transport = httpx.ASGITransport(app=create_app(dead))
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        response = await client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


async def ready(engine):
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
        return await client.get("/readyz")


async def test_readyz_says_ready_when_the_schema_is_the_newest(engine):
    response = await ready(engine)
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "schema": newest_revision()}


async def test_readyz_is_503_when_the_database_is_gone():
    response = await ready(create_engine("postgresql://nobody@127.0.0.1:1/none"))
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


async def test_readyz_is_503_until_the_migrations_ran(tmp_path):
    """A replica started on a database that `roster db upgrade` has not brought up to date
    (or not yet created) takes no traffic, while /healthz still answers."""
    engine = create_engine(f"sqlite:///{tmp_path / 'roster.db'}")
    try:
        response = await ready(engine)
        assert response.status_code == 503
        assert response.json() == {
            "status": "not_ready", "database": "ok", "schema": None, "expected": newest_revision()
        }  # fmt: skip
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0012'"))
        response = await ready(engine)
        assert response.status_code == 503 and response.json()["schema"] == "0012"
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE alembic_version SET version_num = :v"), {"v": newest_revision()}
            )
        assert (await ready(engine)).status_code == 200
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_honours_the_ports_and_creates_the_demo(cli_env, tmp_path):
    port, sftp_port = free_port(), free_port()
    env = {**cli_env, "ROSTER_HTTP_PORT": str(port), "ROSTER_DATABASE_URL": ""}
    env["ROSTER_SFTP_PORT"] = str(sftp_port)
    env["ROSTER_DATA_DIR"] = str(tmp_path / "fresh")
    server = subprocess.Popen(
        [sys.executable, "-m", "roster", "serve", "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "roster serve did not answer in 60 s"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        assert (tmp_path / "fresh" / "roster.db").exists()
        with socket.create_connection(("127.0.0.1", sftp_port), timeout=5) as sftp:
            assert sftp.recv(64).startswith(b"SSH-2.0-")  # the drop boxes' SFTP server
    finally:
        server.terminate()
        said = server.communicate(timeout=30)[0]
    # `make run` runs this command: it says where the Control Centre is.
    assert f"Control Centre: http://127.0.0.1:{port}/" in said, said
    listed = subprocess.run(
        [sys.executable, "-m", "roster", "users", "list", "--tenant", "demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"username": "JanJ"' in listed.stdout
