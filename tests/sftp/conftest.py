"""A drop box to test against: the organization's SFTP account with a password and a key, and
Roster's real SFTP server listening in this process on a free loopback port."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from roster import sftp
from roster.domain.passwords import hash_password
from roster.jobs.dropbox_files import Folders
from roster.settings import Settings
from roster.store import dropboxes, tenants
from roster.store.db import writing
from tests.conftest import free_port

PASSWORD = "correct horse battery staple"


@dataclass
class DropBox:
    tenant: tenants.Tenant
    settings: Settings
    folders: Folders
    port: int
    key: Path  # the private key file; its .pub is authorized

    @property
    def slug(self) -> str:
        return self.tenant.slug

    @property
    def folder(self) -> Path:
        return self.folders.account(self.slug)

    def connect(
        self, username: str | None = None, **options: object
    ) -> asyncssh.SSHClientConnection:
        """An asyncssh client connection (use with `async with`); the key unless told otherwise."""
        defaults: dict[str, object] = {"client_keys": [str(self.key)], "password": None}
        return asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=username or self.slug,
            known_hosts=None,
            agent_path=None,
            **(defaults | options),
        )


def make_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "uploader", "-f", str(path)],
        check=True,
    )
    return path


async def enable(engine, tenant: tenants.Tenant, key: Path) -> None:
    public = asyncssh.read_public_key(f"{key}.pub")
    async with writing(engine) as conn:
        await dropboxes.enable(conn, tenant.id, tenant.timezone)
        await dropboxes.set_password(conn, tenant.id, hash_password(PASSWORD))
        await dropboxes.add_key(
            conn,
            tenant.id,
            public.get_fingerprint("sha256"),
            public.export_public_key().decode(),
            "uploader",
        )


@pytest.fixture
async def dropbox(engine, tenant, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "var",
        sftp_port=free_port(),
        max_import_bytes=200_000,
        pickup_settle_seconds=0,
        sftp_failed_logins_per_minute=5,
    )
    key = make_key(tmp_path / "uploader")
    await enable(engine, tenant, key)
    server = await sftp.start(engine, settings)
    folders = Folders(settings.data_dir / "dropbox")
    folders.prepare(tenant.slug)  # as `roster sftp enable` does
    yield DropBox(tenant, settings, folders, settings.sftp_port, key)
    server.close()
    await server.wait_closed()
