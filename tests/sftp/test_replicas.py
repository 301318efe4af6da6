"""Two `roster serve` replicas on one PostgreSQL database and one shared data directory: an
upload is picked up once, and so is a daily run."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from roster.store import dropboxes, imports
from roster.store.clock import now
from roster.store.db import writing
from roster.store.schema import dropboxes as dropboxes_table
from tests.conftest import POSTGRES_URL, free_port
from tests.factories import csv_bytes, people
from tests.sftp.conftest import DropBox, enable, make_key

FILE = "flexwhere - users.csv"


def _wait_for_port(port: int, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after 60 s")


async def _history(engine, tenant) -> list[imports.ImportRecord]:
    async with engine.connect() as conn:
        return await imports.history(conn, tenant.id)


async def _settled_history(engine, tenant, count: int) -> list[imports.ImportRecord]:
    """The history once it has `count` imports and a few more ticks brought no other."""
    deadline = time.monotonic() + 30
    while len(await _history(engine, tenant)) < count:
        assert time.monotonic() < deadline, "no pickup within 30 s"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # ten more ticks of each replica
    return await _history(engine, tenant)


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share a PostgreSQL database")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_replicas_pick_up_each_file_once(database_url, engine, tenant, tmp_path):
    key = make_key(tmp_path / "uploader")
    await enable(engine, tenant, key)
    async with writing(engine) as conn:
        await dropboxes.configure(conn, tenant.id, process_on_upload=True)
    data_dir = tmp_path / "shared"
    ports = [(free_port(), free_port()) for _ in range(2)]
    replicas = []
    try:
        for http_port, sftp_port in ports:
            env = os.environ | {
                "ROSTER_DATABASE_URL": database_url,
                "ROSTER_DATA_DIR": str(data_dir),
                "ROSTER_HTTP_PORT": str(http_port),
                "ROSTER_SFTP_PORT": str(sftp_port),
                "ROSTER_SCHEDULER_TICK_SECONDS": "0.2",
                "ROSTER_PICKUP_SETTLE_SECONDS": "0.5",
            }
            replicas.append(
                subprocess.Popen(
                    [sys.executable, "-m", "roster", "serve"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        for (_, sftp_port), replica in zip(ports, replicas, strict=True):
            _wait_for_port(sftp_port, replica)

        from roster.jobs.dropbox_files import Folders
        from roster.settings import Settings

        settings = Settings(data_dir=data_dir, sftp_port=ports[0][1])
        box = DropBox(tenant, settings, Folders(data_dir / "dropbox"), ports[0][1], key)
        source = tmp_path / "export.csv"
        source.write_bytes(csv_bytes(people(20)))
        async with box.connect() as conn, conn.start_sftp_client() as client:
            await client.put(str(source), FILE)

        history = await _settled_history(engine, tenant, 1)
        assert [(r.channel, r.status) for r in history] == [("sftp", "applied")]
        assert len(list(box.folders.results(tenant.slug).iterdir())) == 1

        # The daily run: a file put there by other means, due for both replicas at once.
        (box.folder / FILE).write_bytes(csv_bytes(people(21)))
        async with writing(engine) as conn:
            await conn.execute(
                dropboxes_table.update()
                .where(dropboxes_table.c.tenant_id == tenant.id)
                .values(next_daily_at=now() - timedelta(seconds=1))
            )
        history = await _settled_history(engine, tenant, 2)
        assert [(r.status, r.actor) for r in history] == [
            ("applied", "sftp pickup (daily)"),
            ("applied", "sftp pickup (upload)"),
        ]
    finally:
        for replica in replicas:
            replica.terminate()
        for replica in replicas:
            try:
                replica.wait(timeout=20)
            except subprocess.TimeoutExpired:
                replica.kill()
