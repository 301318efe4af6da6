"""The drop boxes on disk: each organization's folder (what its SFTP login sees) and the
server's own places beside them; taking a file for a pickup, naming what is filed, pruning."""

import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID, uuid4

from roster.domain.schedule import zone
from roster.files import private_dir
from roster.settings import Settings


@dataclass(frozen=True)
class Folders:
    """Where drop boxes live: each account's folder (what its SFTP login sees, as /) and the
    server's own places beside them, out of every account's reach."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> "Folders":
        """Where the configured data directory keeps the drop boxes."""
        return cls(settings.data_dir / "dropbox")

    def account(self, slug: str) -> Path:
        return self.root / slug

    def results(self, slug: str) -> Path:
        return self.account(slug) / "results"

    def processed(self, slug: str) -> Path:
        return self.account(slug) / "processed"

    @property
    def uploads(self) -> Path:
        """Uploads in progress; a file reaches its account's folder only once it is complete."""
        return self.root / ".uploads"

    def claimed(self, slug: str) -> Path:
        """A file taken from the folder for a pickup that has not finished (yet), named by the
        id its import is recorded under."""
        return self.root / ".claimed" / slug

    def held(self, import_id: UUID) -> Path:
        """The file of a held pickup, kept for its approval."""
        return self.root / ".held" / f"{import_id}.csv"

    def prepare(self, slug: str) -> None:
        for folder in (self.results(slug), self.processed(slug), self.uploads, self.claimed(slug)):
            private_dir(folder)
        private_dir(self.held(UUID(int=0)).parent)


def stamp(at: datetime, timezone: str) -> str:
    """A time for file names, in the organization's zone, safe on every file system."""
    return at.astimezone(zone(timezone)).strftime("%Y-%m-%d %H%M%S")


def readable(stamp: str) -> str:
    """'2026-11-25 021503' (as in file names) -> '2026-11-25 02:15:03'."""
    day, clock = stamp.split(" ")
    return f"{day} {clock[:2]}:{clock[2:4]}:{clock[4:]}"


def unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate


def claim(folders: Folders, slug: str, file_name: str) -> Path | None:
    """Take the pickup file out of the folder before reading it, so an upload that lands
    meanwhile is the next pickup's, whole; its name is the id of its import to be. A claim left
    by an interrupted pickup comes first."""
    claimed = folders.claimed(slug)
    left = sorted(claimed.iterdir())
    if left:
        source = left[0]
        try:
            UUID(source.name)
            return source
        except ValueError:
            pass  # not named by an import id, so never imported: claimed afresh
    else:
        source = folders.account(slug) / file_name
        if not source.is_file() or source.is_symlink():
            return None
    target = claimed / str(uuid4())
    os.replace(source, target)
    return target


def others(folders: Folders, slug: str, file_name: str) -> list[str]:
    account = folders.account(slug)
    return sorted(p.name for p in account.iterdir() if p.name != file_name and not p.is_dir())


def prune(folders: Folders, slug: str, days: int) -> int:
    """Delete reports and processed files older than the organization's retention period."""
    cutoff = time.time() - days * 86400
    gone = 0
    for folder in (folders.results(slug), folders.processed(slug)):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
    return gone
