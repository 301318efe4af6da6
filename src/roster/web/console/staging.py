"""Uploaded files between the preview and the apply.

The file stays on the server (the browser sends it once) under `data_dir/console-uploads/`, named
by an unguessable id. It is bound to the organization and the admin who uploaded it, so an id
seen by anyone else opens nothing, and it expires after an hour. A file is written with its
bytes first and its description last (each by an atomic rename), so a half-written upload is
never found."""

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from roster.domain.mode import Mode
from roster.files import private_dir, private_opener

LIFETIME_SECONDS = 3600
_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32); never a path


@dataclass(frozen=True)
class Staged:
    id: str
    tenant_id: UUID
    admin_id: UUID
    file_name: str
    mode: Mode
    size: int
    created_at: float
    path: Path

    def data(self) -> bytes:
        return self.path.read_bytes()


def folder(data_dir: Path) -> Path:
    return data_dir / "console-uploads"


def _write(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    with open(part, "wb", opener=private_opener) as out:
        out.write(data)
    part.replace(path)


def keep(
    data_dir: Path, tenant_id: UUID, admin_id: UUID, file_name: str, mode: Mode, data: bytes
) -> Staged:
    base = private_dir(folder(data_dir))
    prune(data_dir)
    upload_id = secrets.token_urlsafe(32)
    staged = Staged(
        upload_id, tenant_id, admin_id, file_name, mode, len(data), time.time(),
        base / f"{upload_id}.csv",
    )  # fmt: skip
    _write(staged.path, data)
    about = {
        "tenant_id": str(tenant_id),
        "admin_id": str(admin_id),
        "file_name": file_name,
        "mode": mode.value,
        "size": len(data),
        "created_at": staged.created_at,
    }
    _write(base / f"{upload_id}.json", json.dumps(about).encode())
    return staged


def find(data_dir: Path, upload_id: str, tenant_id: UUID, admin_id: UUID) -> Staged | None:
    """The upload, if it is this admin's in this organization and has not expired."""
    if not _ID.fullmatch(upload_id):
        return None
    base = folder(data_dir)
    try:
        about = json.loads((base / f"{upload_id}.json").read_bytes())
    except (OSError, ValueError):
        return None
    if time.time() - about["created_at"] > LIFETIME_SECONDS:
        discard(data_dir, upload_id)
        return None
    if about["tenant_id"] != str(tenant_id) or about["admin_id"] != str(admin_id):
        return None
    return Staged(
        upload_id, tenant_id, admin_id, about["file_name"], Mode(about["mode"]), about["size"],
        about["created_at"], base / f"{upload_id}.csv",
    )  # fmt: skip


def discard(data_dir: Path, upload_id: str) -> None:
    if _ID.fullmatch(upload_id):
        for suffix in (".json", ".csv"):  # the description first: then it is gone for `find`
            (folder(data_dir) / f"{upload_id}{suffix}").unlink(missing_ok=True)


def prune(data_dir: Path, now: float | None = None) -> None:
    """Delete expired uploads (and pieces a crash left behind); runs on every new upload."""
    now = time.time() if now is None else now
    for path in folder(data_dir).glob("*"):
        try:
            if now - path.stat().st_mtime > LIFETIME_SECONDS:
                path.unlink(missing_ok=True)
        except OSError:
            continue
