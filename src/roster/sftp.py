"""The SFTP drop box server: one account per organization (its slug), confined to its folder.

Uploads are written beside the folder and moved into it only when the client closes the file
while its session is alive, so a cut connection never leaves a partial file to be picked up
(asyncssh closes the handles of a lost session just as a client would). An account's folder
holds a bounded number of files and bytes at its top, uploads in progress included; an upload
beyond either is refused with an SFTP error that says which, and is not kept."""

import asyncio
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.misc import MaybeAwait
from asyncssh.sftp import (
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_TRUNC,
    FXF_WRITE,
    SFTPAttrs,
    SFTPError,
    SFTPFailure,
    SFTPFileAlreadyExists,
    SFTPPermissionDenied,
    SFTPQuotaExceeded,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from roster.domain.fields import has_control
from roster.domain.passwords import verify
from roster.files import private_copy, private_dir, private_opener
from roster.jobs.dropbox_files import Folders
from roster.settings import Settings
from roster.store import dropboxes
from roster.store.db import writing
from roster.throttle import LoginLimiter, account_key

log = logging.getLogger("roster.sftp")
HOST_KEY = "sftp_host_ed25519_key"
STALE_UPLOAD_SECONDS = 86400  # an unfinished upload left this long by a stopped server is dropped


def host_key(data_dir: Path) -> asyncssh.SSHKey:
    """The server's key, made on first use and kept, so clients can pin it (replicas sharing
    the data directory share it too)."""
    path = private_dir(data_dir) / HOST_KEY
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        # Written whole under a name of its own, then linked into place: a replica starting at
        # the same moment reads either no key or a whole one, never one half written.
        draft = path.with_name(f"{HOST_KEY}.{os.getpid()}.{secrets.token_hex(4)}")
        with open(draft, "xb", opener=private_opener) as out:
            out.write(key.export_private_key())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another replica made it first: theirs is the key
        finally:
            draft.unlink()
    return asyncssh.read_private_key(path)


@dataclass
class Accounts:
    """What every connection needs: the database, the folders and the login limiter."""

    engine: AsyncEngine
    folders: Folders
    limiter: LoginLimiter
    settings: Settings
    tasks: set["asyncio.Task[None]"] = field(default_factory=set)
    # Uploads in progress per account, over all its sessions: what each has written so far.
    writing: dict[str, dict["_Upload", int]] = field(default_factory=dict)

    async def check(self, username: str, peer: str, password: str | None, key: Any) -> bool:
        who = account_key("user", username[:100])
        if self.limiter.blocked(peer, who):
            log.warning("SFTP login refused for %r from %s: too many failures", username, peer)
            return False
        box, keys = None, []
        if not has_control(username):  # else no organization's slug: refused as unknown
            async with self.engine.connect() as conn:
                box = await dropboxes.by_username(conn, username)
                keys = await dropboxes.keys(conn, box.tenant_id) if box and key else []
        if password is not None:
            ok = await asyncio.to_thread(verify, box.password_hash if box else None, password)
        else:
            offered = key.get_fingerprint("sha256")
            ok = any(k.fingerprint == offered for k in keys)
        if ok:
            return True
        if password is not None:
            # Keys cannot be guessed, and clients offer every key they hold before a
            # password: only wrong passwords count against the limit.
            self.limiter.failed(peer, who)
            log.warning("SFTP login failed for %r from %s (password)", username, peer)
        else:
            log.info("SFTP key not accepted for %r from %s", username, peer)
        return False

    def uploaded(self, slug: str, name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._uploaded(slug, name))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _uploaded(self, slug: str, name: str) -> None:
        async with writing(self.engine) as conn:
            box = await dropboxes.by_username(conn, slug)
            if box is None or name != box.file_name:
                return
            await dropboxes.uploaded(conn, box.tenant_id, self.settings.pickup_settle_seconds)
        log.info("SFTP upload of %r for %s is complete", name, slug)


class _Login(asyncssh.SSHServer):
    """Every username gets the same questions, so a login reveals nothing about who exists."""

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts
        self._peer = "?"

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else "?"

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        return await self._accounts.check(username, self._peer, password, None)

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return await self._accounts.check(username, self._peer, None, key)


@dataclass(eq=False)
class _Upload:
    target: bytes  # where the file goes once complete
    staging: Path
    failed: str | None = None


def _waiting(root: bytes, besides: bytes) -> list[int]:
    """The sizes of the files at the top of an account's folder, but `besides`."""
    with os.scandir(root) as entries:
        return [
            e.stat().st_size
            for e in entries
            if e.path != besides and e.is_file(follow_symlinks=False)
        ]


class _Folder(asyncssh.SFTPServer):
    """One account's view: its folder as /, files at the top may be written, results/ and
    processed/ only read and removed; no links, no folders of its own, nothing outside."""

    def __init__(self, chan: asyncssh.SSHServerChannel, accounts: Accounts) -> None:
        self._accounts = accounts
        self._slug = chan.get_extra_info("username")
        folders = accounts.folders
        folders.prepare(self._slug)
        self._root = os.path.realpath(folders.account(self._slug)).encode()
        self._uploads: dict[object, _Upload] = {}
        self._closing: list[_Upload] = []
        super().__init__(chan, chroot=self._root)

    def map_path(self, path: bytes) -> bytes:
        local = super().map_path(path)
        real = os.path.realpath(local)
        if real != self._root and not real.startswith(self._root + b"/"):
            raise SFTPPermissionDenied("that path is outside your folder")
        return local

    def _top_level(self, path: bytes) -> bytes:
        local = self.map_path(path)
        if os.path.dirname(local) != self._root or os.path.isdir(local):
            raise SFTPPermissionDenied(
                "files can only be written at the top of your folder (results/ and processed/ "
                "are read-only)"
            )
        return local

    def format_user(self, uid: int | None) -> str:
        return "roster"  # not the server's own account names

    def format_group(self, gid: int | None) -> str:
        return "roster"

    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> object:
        if not pflags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC):
            return super().open(path, pflags, attrs)
        target = self._top_level(path)
        exists = os.path.exists(target)
        if pflags & FXF_EXCL and exists:
            raise SFTPFileAlreadyExists("the file exists")
        self._check_room(target)
        staging = self._accounts.folders.uploads / uuid.uuid4().hex
        if exists and not pflags & FXF_TRUNC:
            private_copy(Path(os.fsdecode(target)), staging)  # a resumed upload continues it
        flags = os.O_RDWR | os.O_CREAT | (os.O_APPEND if pflags & FXF_APPEND else 0)
        file_obj = os.fdopen(private_opener(staging, flags), "r+b", buffering=0)
        upload = self._uploads[file_obj] = _Upload(target, staging)
        self._pending[upload] = os.path.getsize(staging)
        return file_obj

    @property
    def _pending(self) -> dict[_Upload, int]:
        return self._accounts.writing.setdefault(self._slug, {})

    def _check_room(self, target: bytes) -> None:
        """Refuse a new upload when the folder's files and the uploads in progress are already
        as many as the drop box may hold."""
        most = self._accounts.settings.dropbox_max_files
        if len(_waiting(self._root, target)) + len(self._pending) >= most:
            raise SFTPQuotaExceeded(
                f"the drop box holds at most {most} files at its top; remove some first"
            )

    def _check_size(self, upload: _Upload, size: int) -> None:
        """Refuse a write that makes the file, or the folder with the uploads in progress,
        larger than allowed."""
        settings = self._accounts.settings
        if size > settings.max_import_bytes:
            raise SFTPFailure(f"files are limited to {settings.max_import_bytes} bytes")
        self._pending[upload] = max(self._pending.get(upload, 0), size)
        total = sum(_waiting(self._root, upload.target)) + sum(self._pending.values())
        if total > settings.dropbox_max_bytes:
            raise SFTPQuotaExceeded(
                f"the drop box holds at most {settings.dropbox_max_bytes} bytes in all; remove "
                "some files first"
            )

    def write(self, file_obj: object, offset: int, data: bytes) -> MaybeAwait[int]:
        upload = self._uploads.get(file_obj)
        if upload is not None:
            try:
                self._check_size(upload, offset + len(data))
            except SFTPError as error:
                upload.failed = error.reason
                raise
        return super().write(file_obj, offset, data)

    def close(self, file_obj: object) -> None:
        super().close(file_obj)
        upload = self._uploads.pop(file_obj, None)
        if upload is None:
            return
        self._pending.pop(upload, None)
        if upload.failed or self.channel.is_closing():
            self._abort(upload, upload.failed or "the connection was lost")
            return
        # A session torn down closes its open files and exits in the same step; a close the
        # client asked for is followed by at least one turn of the loop before exit().
        self._closing.append(upload)
        asyncio.get_running_loop().call_soon(self._settle, upload)

    def _settle(self, upload: _Upload) -> None:
        if upload not in self._closing:
            return
        self._closing.remove(upload)
        os.replace(upload.staging, upload.target)
        self._arrived(upload.target)

    def _arrived(self, local: bytes) -> None:
        self._accounts.uploaded(self._slug, os.path.basename(local).decode(errors="replace"))

    def _abort(self, upload: _Upload, why: str) -> None:
        upload.staging.unlink(missing_ok=True)
        name = os.path.basename(upload.target).decode(errors="replace")
        log.warning("SFTP upload of %r for %s not kept: %s", name, self._slug, why)

    def exit(self) -> None:
        for upload in self._closing + list(self._uploads.values()):
            self._pending.pop(upload, None)
            self._abort(upload, "the session ended before the upload completed")
        self._closing.clear()
        self._uploads.clear()

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._top_level(oldpath)
        target = self._top_level(newpath)  # checked before anything moves
        super().rename(oldpath, newpath)
        self._arrived(target)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._top_level(oldpath)
        target = self._top_level(newpath)
        super().posix_rename(oldpath, newpath)
        self._arrived(target)

    def remove(self, path: bytes) -> None:
        if os.path.islink(self.map_path(path)):
            raise SFTPPermissionDenied("links cannot be removed here")
        super().remove(path)

    def _times_only(self, attrs: SFTPAttrs) -> SFTPAttrs:
        # Clients that preserve times (WinSCP does by default) may; modes and owners stay ours.
        return SFTPAttrs(atime=attrs.atime, mtime=attrs.mtime)

    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        self._top_level(path)
        super().setstat(path, self._times_only(attrs))

    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        super().fsetstat(file_obj, self._times_only(attrs))

    def _refuse(self, *args: object) -> None:
        raise SFTPPermissionDenied("not allowed in a drop box")

    mkdir = rmdir = symlink = link = _refuse  # type: ignore[assignment]


async def start(engine: AsyncEngine, settings: Settings) -> asyncssh.SSHAcceptor:
    """Listen for SFTP on the configured address; returns the acceptor to close on shutdown."""
    folders = Folders.of(settings)
    private_dir(folders.uploads)
    for left in folders.uploads.iterdir():
        if time.time() - left.stat().st_mtime > STALE_UPLOAD_SECONDS:
            left.unlink(missing_ok=True)
    accounts = Accounts(
        engine, folders, LoginLimiter(settings.sftp_failed_logins_per_minute), settings
    )
    return await asyncssh.listen(
        settings.sftp_host,
        settings.sftp_port,
        server_factory=partial(_Login, accounts),
        server_host_keys=[host_key(settings.data_dir)],
        sftp_factory=partial(_Folder, accounts=accounts),
        allow_scp=False,
        login_timeout=60,
    )
