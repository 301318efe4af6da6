"""The SFTP drop box's pickup: the organization's file becomes a replace import (channel sftp),
once, whichever replica or trigger gets there first, and however the process ends; the uploader
finds a report beside it."""

import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from roster import metrics
from roster.domain import csvfile
from roster.domain.issues import Problems
from roster.domain.mode import Mode
from roster.files import private_copy
from roster.jobs import dropbox_files
from roster.jobs.dropbox_files import Folders
from roster.jobs.imports import Also, ImportReport, NotRecorded, record_unread, run_import
from roster.jobs.pickup_report import HEADLINES, write_report
from roster.settings import MAX_REPORTED_PROBLEMS
from roster.store import dropboxes, imports, tenants
from roster.store.clock import now
from roster.store.db import exclusive, writing
from roster.store.imports import ImportStatus

log = logging.getLogger("roster.pickup")
CHANNEL = "sftp"
STALE_AFTER = timedelta(hours=48)  # no new file for this long is worth a warning


class PickupError(Exception):
    pass


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
    with metrics.pickup_run(slug, trigger) as counted:
        result = await _pickup(engine, folders, slug, trigger, max_bytes, max_problems)
        counted.result = result.status
        return result


async def _pickup(
    engine: AsyncEngine,
    folders: Folders,
    slug: str,
    trigger: str,
    max_bytes: int,
    max_problems: int,
) -> Pickup:
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
    ignored = dropbox_files.others(folders, slug, box.file_name)
    claimed = dropbox_files.claim(folders, slug, box.file_name)
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
    stamp = dropbox_files.stamp(at, box.timezone)
    if report.status == ImportStatus.HELD:
        private_copy(claimed, folders.held(claim))
    written = write_report(folders, box, stamp, report, ignored)
    # Last, so that a pickup stopped before this point is finished by the next one.
    os.replace(claimed, dropbox_files.unique(folders.processed(slug) / f"{stamp} {box.file_name}"))
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
            await _discard_held(
                engine, folders, box.tenant_id, _actor(trigger), "a newer file arrived"
            )
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


async def _discard_held(
    engine: AsyncEngine, folders: Folders, tenant_id: UUID, by: str, why: str
) -> None:
    async with writing(engine) as conn:
        for record in await imports.held(conn, tenant_id, CHANNEL):
            await imports.decide(conn, record, ImportStatus.DISCARDED, by=by, why=why)
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
    async with _deciding(engine, held.tenant_id):
        held = await _held_record(engine, slug, import_id)  # still held, now that it is ours
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
                await imports.decide(
                    conn, held, ImportStatus.APPROVED, by=actor, applied_as=report.import_id
                )
            path.unlink(missing_ok=True)
            async with engine.connect() as conn:
                box = await dropboxes.get(conn, held.tenant_id)
            when = dropbox_files.stamp(now(), box.timezone)
            write_report(folders, box, when, report, [], HEADLINES["approved"])
        return report


async def discard(
    engine: AsyncEngine, folders: Folders, slug: str, import_id: UUID, *, actor: str
) -> None:
    held = await _held_record(engine, slug, import_id)
    async with _deciding(engine, held.tenant_id):
        held = await _held_record(engine, slug, import_id)
        async with writing(engine) as conn:
            await imports.decide(conn, held, ImportStatus.DISCARDED, by=actor)
    folders.held(import_id).unlink(missing_ok=True)


@asynccontextmanager
async def _deciding(engine: AsyncEngine, tenant_id: UUID) -> AsyncIterator[None]:
    """The organization's pickup lock: an approval, a discard and a pickup never overlap, so
    one decision of a held pickup is the one recorded."""
    async with exclusive(engine, f"pickup:{tenant_id}") as mine:
        if not mine:
            raise PickupError("a pickup for this organization is running; try again shortly")
        yield


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
    since = box.last_arrival
    if at - since <= STALE_AFTER:
        return []
    hours = int((at - since).total_seconds() // 3600)
    if box.last_upload_at is None:
        return [f"no file has arrived in the {hours} hours since the drop box was enabled"]
    return [f"no new file has arrived for {hours} hours: check the export that uploads it"]
