"""The SFTP drop box's pickup: the organization's file becomes a replace import (channel sftp),
once, whichever replica or trigger gets there first, and however the process ends; the uploader
finds a report beside it."""

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from roster.domain import csvfile
from roster.domain.issues import Problems
from roster.domain.mode import Mode
from roster.domain.schedule import zone
from roster.files import private_copy, private_dir, private_opener
from roster.jobs.imports import Also, ImportReport, NotRecorded, record_unread, run_import
from roster.settings import MAX_REPORTED_PROBLEMS, Settings
from roster.store import dropboxes, imports, tenants
from roster.store.db import exclusive, writing
from roster.store.directory import now
from roster.store.imports import ImportStatus

log = logging.getLogger("roster.pickup")
CHANNEL = "sftp"
STALE_AFTER = timedelta(hours=48)  # no new file for this long is worth a warning


class PickupError(Exception):
    pass


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


class NoPickup(StrEnum):
    """Why a pickup neither imported nor recorded anything."""

    NO_FILE = "no_file"  # the drop box holds no file
    BUSY = "busy"  # another pickup of the organization is running
    NOT_DUE = "not_due"  # another replica did it while this one waited


@dataclass
class Pickup:
    status: ImportStatus | NotRecorded | NoPickup  # the import's, or why there was none
    import_id: UUID | None = None
    report: ImportReport | None = None
    ignored: list[str] = field(default_factory=list)
    report_file: Path | None = None


def _stamp(at: datetime, timezone: str) -> str:
    """A time for file names, in the organization's zone, safe on every file system."""
    return at.astimezone(zone(timezone)).strftime("%Y-%m-%d %H%M%S")


def _readable(stamp: str) -> str:
    """'2026-11-25 021503' (as in file names) -> '2026-11-25 02:15:03'."""
    day, clock = stamp.split(" ")
    return f"{day} {clock[:2]}:{clock[2:4]}:{clock[4:]}"


def _unique(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate


def _claim(folders: Folders, slug: str, file_name: str) -> Path | None:
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


def _others(folders: Folders, slug: str, file_name: str) -> list[str]:
    account = folders.account(slug)
    return sorted(p.name for p in account.iterdir() if p.name != file_name and not p.is_dir())


async def pickup(
    engine: AsyncEngine,
    folders: Folders,
    slug: str,
    *,
    trigger: str,
    max_bytes: int,
    max_problems: int = MAX_REPORTED_PROBLEMS,
) -> Pickup:
    """Process the organization's file now if it is due (or, from the CLI, regardless)."""
    async with engine.connect() as conn:
        tenant = await tenants.get(conn, slug)
    async with exclusive(engine, f"pickup:{tenant.id}") as mine:
        if not mine:
            return Pickup(NoPickup.BUSY)
        async with engine.connect() as conn:
            box = await dropboxes.get(conn, tenant.id)
        started = now()
        if trigger != "cli" and not box.due(started):
            return Pickup(NoPickup.NOT_DUE)  # another replica did it while this one waited
        folders.prepare(slug)
        result = await _process(engine, folders, box, trigger, max_bytes, max_problems, started)
        async with writing(engine) as conn:
            await dropboxes.picked_up(conn, box, started=started)
        return result


async def _process(
    engine: AsyncEngine,
    folders: Folders,
    box: dropboxes.Dropbox,
    trigger: str,
    max_bytes: int,
    max_problems: int,
    started: datetime,
) -> Pickup:
    slug = box.slug
    ignored = _others(folders, slug, box.file_name)
    claimed = _claim(folders, slug, box.file_name)
    if claimed is None:
        log.info("pickup for %s: no %r in the drop box", slug, box.file_name)
        return Pickup(NoPickup.NO_FILE, ignored=ignored)
    claim = UUID(claimed.name)
    async with engine.connect() as conn:
        done = await imports.find(conn, claim)
    if done is not None and done.tenant_id == box.tenant_id:
        # The claim's import committed, then its pickup stopped: only its filing is left.
        report, at = ImportReport.recorded(done), done.created_at
        ignored = done.report.get("ignored", [])
        log.info("pickup for %s: import %s was recorded; filing its file", slug, claim)
    else:
        report = await _import(
            engine, folders, box, claimed, claim, trigger, max_bytes, max_problems, ignored
        )
        at = started
    stamp = _stamp(at, box.timezone)
    if report.status == ImportStatus.HELD:
        private_copy(claimed, folders.held(claim))
    written = _write_report(folders, box, stamp, report, ignored)
    # Last, so that a pickup stopped before this point is finished by the next one.
    os.replace(claimed, _unique(folders.processed(slug) / f"{stamp} {box.file_name}"))
    log.info("pickup for %s (%s): %s, import %s", slug, trigger, report.status, report.import_id)
    return Pickup(report.status, report.import_id, report, ignored, written)


async def _import(
    engine: AsyncEngine,
    folders: Folders,
    box: dropboxes.Dropbox,
    claimed: Path,
    claim: UUID,
    trigger: str,
    max_bytes: int,
    max_problems: int,
    ignored: list[str],
) -> ImportReport:
    """Import the claimed file under the claim's id; the drop box remembers the import (and the
    file's checksum) in its transaction."""
    note: dict[str, Any] = {"trigger": trigger, "ignored": ignored}
    size = claimed.stat().st_size
    if size > max_bytes:
        issue = csvfile.too_large(size, max_bytes)
        note |= {"errors": [issue.as_dict()], "held_reason": None}
        status, issues = ImportStatus.REJECTED, [issue]
    else:
        data = claimed.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        note["sha256"] = sha256
        if sha256 != box.last_sha256:
            await _discard_held(engine, folders, box.tenant_id, "a newer file arrived")
            return await run_import(
                engine, box.slug, data, mode=Mode.REPLACE, channel=CHANNEL,
                actor=_actor(trigger), file_name=box.file_name, partial=True,
                max_bytes=max_bytes, note=note, import_id=claim, max_problems=max_problems,
                also=_remember(box, claim, sha256),
            )  # fmt: skip
        note["skipped_because"] = f"the file is the same as at the last pickup ({sha256})"
        status, issues = ImportStatus.SKIPPED, []
    await record_unread(
        engine, box.slug, status, channel=CHANNEL, actor=_actor(trigger),
        file_name=box.file_name, mode=Mode.REPLACE, note=note, import_id=claim,
        also=_remember(box, claim, None),
    )  # fmt: skip
    return ImportReport(status, {}, Problems.of(issues, max_problems), claim)


def _remember(box: dropboxes.Dropbox, claim: UUID, sha256: str | None) -> Also:
    """The drop box's memory of this pickup, written in its import's transaction."""
    return lambda conn: dropboxes.remember(conn, box.tenant_id, claim, sha256)


def _actor(trigger: str) -> str:
    return f"sftp pickup ({trigger})"


_HEADLINES = {
    "applied": "APPLIED",
    "held": "HELD: nothing was changed; it waits for an admin's approval",
    "rejected": "REJECTED: nothing was changed",
    "skipped": "SKIPPED: the file is the same as at the last pickup; nothing to do",
    "approved": "APPLIED after an admin's approval",
}


def _counts(counts: dict[str, int]) -> str:
    return (
        f"added {counts.get('added', 0)}, updated {counts.get('updated', 0)}, "
        f"removed {counts.get('removed', 0)}, unchanged {counts.get('unchanged', 0)}, "
        f"invalid rows {counts.get('invalid', 0)}"
    )


def render_report(
    box: dropboxes.Dropbox,
    when: str,
    report: ImportReport,
    ignored: list[str],
    headline: str | None = None,
) -> str:
    """The plain-text report an uploader reads in results/."""
    lines = [
        "Roster: pickup report",
        f"File:     {box.file_name}",
        f"Time:     {_readable(when)} ({box.timezone})",
        f"Result:   {headline or _HEADLINES.get(report.status, report.status.upper())}",
        f"Import:   {report.import_id}",
        "",
    ]
    if report.status == ImportStatus.APPLIED:
        lines.append(f"Changes:  {_counts(report.counts)}")
    elif report.planned and report.held:
        lines.append(f"The file would have: {_counts(report.planned)}")
    if report.held:
        lines += [
            "",
            f"Why it is held: {report.held}.",
            "An admin approves it in the Control Centre or with",
            f"  roster sync approve --tenant {box.slug} {report.import_id}",
            "and a newer file replaces it.",
        ]
    left_out = report.problems.left_out()
    if left_out:
        lines += ["", left_out]
    if report.errors:
        lines += ["", "Errors (the users of these rows were left as they were):"]
        lines += [f"  {issue}" for issue in report.errors]
    if report.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  {issue}" for issue in report.warnings]
    if ignored:
        lines += ["", f'Ignored (only "{box.file_name}" is picked up):']
        lines += [f"  {name}" for name in ignored]
    return "\n".join(lines) + "\n"


def _write_report(
    folders: Folders,
    box: dropboxes.Dropbox,
    stamp: str,
    report: ImportReport,
    ignored: list[str],
    headline: str | None = None,
) -> Path:
    stem = box.file_name.removesuffix(".csv")
    path = _unique(folders.results(box.slug) / f"{stamp} {stem} - report.txt")
    staging = folders.uploads / f"report-{report.import_id}"
    with open(staging, "w", encoding="utf-8", opener=private_opener) as out:
        out.write(render_report(box, stamp, report, ignored, headline))
    os.replace(staging, path)  # the uploader never reads half a report
    return path


async def _discard_held(engine: AsyncEngine, folders: Folders, tenant_id: UUID, why: str) -> None:
    async with writing(engine) as conn:
        for record in await imports.held(conn, tenant_id, CHANNEL):
            await imports.set_status(conn, tenant_id, record.id, ImportStatus.DISCARDED)
            folders.held(record.id).unlink(missing_ok=True)
            log.info("held pickup %s discarded: %s", record.id, why)


async def _held_record(engine: AsyncEngine, slug: str, import_id: UUID) -> imports.ImportRecord:
    async with engine.connect() as conn:
        tenant = await tenants.get(conn, slug)
        found = await imports.find(conn, import_id)
    if found is None or found.tenant_id != tenant.id or found.channel != CHANNEL:
        raise PickupError(f"{slug} has no SFTP pickup {import_id}")
    if found.status != ImportStatus.HELD:
        raise PickupError(f"pickup {import_id} is {found.status}, not held")
    return found


async def approve(
    engine: AsyncEngine, folders: Folders, slug: str, import_id: UUID, *, actor: str,
    max_bytes: int, max_problems: int = MAX_REPORTED_PROBLEMS,
) -> ImportReport:  # fmt: skip
    """Apply a held pickup after all, planned afresh against the directory as it is now."""
    held = await _held_record(engine, slug, import_id)
    async with exclusive(engine, f"pickup:{held.tenant_id}") as mine:
        if not mine:
            raise PickupError("a pickup for this organization is running; try again shortly")
        path = folders.held(import_id)
        if not path.is_file():
            raise PickupError(f"the file of pickup {import_id} is no longer kept")
        report = await run_import(
            engine, slug, path.read_bytes(), mode=Mode.REPLACE, channel=CHANNEL, actor=actor,
            file_name=held.file_name, partial=True, force=True, max_bytes=max_bytes,
            note={"approves": str(import_id)}, max_problems=max_problems,
        )  # fmt: skip
        if report.status == ImportStatus.APPLIED:
            async with writing(engine) as conn:
                await imports.set_status(conn, held.tenant_id, import_id, ImportStatus.APPROVED)
            path.unlink()
            async with engine.connect() as conn:
                box = await dropboxes.get(conn, held.tenant_id)
            _write_report(
                folders, box, _stamp(now(), box.timezone), report, [], _HEADLINES["approved"]
            )
        return report


async def discard(engine: AsyncEngine, folders: Folders, slug: str, import_id: UUID) -> None:
    held = await _held_record(engine, slug, import_id)
    async with writing(engine) as conn:
        await imports.set_status(conn, held.tenant_id, import_id, ImportStatus.DISCARDED)
    folders.held(import_id).unlink(missing_ok=True)


@dataclass
class Status:
    box: dropboxes.Dropbox
    last: imports.ImportRecord | None
    held: list[imports.ImportRecord]
    warnings: list[str]


async def status(engine: AsyncEngine, slug: str) -> Status:
    async with engine.connect() as conn:
        tenant = await tenants.get(conn, slug)
        box = await dropboxes.get(conn, tenant.id)
        last = await imports.find(conn, box.last_import_id) if box.last_import_id else None
        waiting = await imports.held(conn, tenant.id, CHANNEL)
    return Status(box, last, waiting, _warnings(box, now()))


def _warnings(box: dropboxes.Dropbox, at: datetime) -> list[str]:
    if not box.enabled:
        return ["the drop box is disabled: nothing is picked up"]
    since = box.last_upload_at or box.created_at
    if at - since <= STALE_AFTER:
        return []
    hours = int((at - since).total_seconds() // 3600)
    if box.last_upload_at is None:
        return [f"no file has arrived in the {hours} hours since the drop box was enabled"]
    return [f"no new file has arrived for {hours} hours: check the export that uploads it"]


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
