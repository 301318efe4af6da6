"""The import history of every channel (CLI, console uploads, SFTP pickups) and its CSV file, each
import's report with its error report CSV, and undo."""

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from roster.domain.error_report import error_report
from roster.jobs import exports
from roster.jobs import imports as import_jobs
from roster.store import imports as history
from roster.web.console import staging
from roster.web.console.common import Admin, Console, Writing, back_to, page, zone_of
from roster.web.console.downloads import csv_download, csv_stream

router = APIRouter()
SHOWN = 100  # the newest imports on the history page
SHOWN_REMOVED = 1000  # the users an import removed, listed on its page; the count is whole
IN_EFFECT = (history.ImportStatus.APPLIED, history.ImportStatus.UNDONE)
STATUS = {
    history.ImportStatus.APPLIED: "Applied",
    history.ImportStatus.REJECTED: "Rejected: nothing was changed",
    history.ImportStatus.HELD: "Held: nothing was changed",
    history.ImportStatus.UNDONE: "Undone",
    history.ImportStatus.SKIPPED: "Skipped",
    history.ImportStatus.APPROVED: "Approved: applied as an import of its own",
    history.ImportStatus.DISCARDED: "Discarded: nothing was changed",
}


async def _own(console: Console, import_id: str) -> history.ImportRecord:
    """The import, if it is this organization's. An import id is global (the operator's CLI names
    one without its organization), so the organization is checked here: another one's is a 404,
    the same answer as an id that does not exist."""
    try:
        wanted = UUID(import_id)
    except ValueError:
        raise HTTPException(404) from None
    async with console.engine.connect() as conn:
        found = await history.find(conn, wanted)
    if found is None or found.tenant_id != console.tenant.id:
        raise HTTPException(404)
    return found


@router.get("/imports", response_class=HTMLResponse)
async def import_list(request: Request, console: Admin) -> Response:
    async with console.engine.connect() as conn:
        records = await history.history(conn, console.tenant.id, limit=SHOWN)
    return page(request, "imports/list.html", console, records=records, shown=SHOWN, status=STATUS)


@router.get("/imports.csv")
async def import_history_file(console: Admin) -> Response:
    """The whole import history (the page shows the newest SHOWN) as CSV, times in the
    organization's zone."""
    chunks = exports.import_history_file(console.engine, console.tenant.id, zone_of(console))
    return await csv_stream(chunks, exports.IMPORTS_FILE_NAME)


@router.get("/imports/{import_id}", response_class=HTMLResponse)
async def report(request: Request, console: Admin, import_id: str, upload: str = "") -> Response:
    record = await _own(console, import_id)
    # A held or rejected console upload can be decided again from its preview, while kept.
    staged = staging.find(
        console.settings.data_dir, upload, console.tenant.id, console.admin.user_id
    )
    removed: list[dict[str, Any]] = []
    if record.status in IN_EFFECT and record.counts.get("removed"):
        async with console.engine.connect() as conn:
            removed = await history.removed_users(conn, record.tenant_id, record.id, SHOWN_REMOVED)
    decided_at = record.report.get("decided_at")
    return page(
        request, "imports/report.html", console, record=record, status=STATUS, staged=staged,
        removed=removed, decided_at=datetime.fromisoformat(decided_at) if decided_at else None,
    )  # fmt: skip


@router.get("/imports/{import_id}/errors.csv")
async def errors_csv(console: Admin, import_id: str) -> Response:
    record = await _own(console, import_id)
    text = error_report(record.problems)
    return csv_download(text, f"import {record.id.hex[:8]} - errors.csv")


@router.get("/imports/{import_id}/undo", response_class=HTMLResponse)
async def undo_page(request: Request, console: Admin, import_id: str) -> Response:
    record = await _own(console, import_id)
    if record.status != history.ImportStatus.APPLIED:
        return back_to(f"/imports/{record.id}")
    return page(request, "imports/undo.html", console, record=record, blockers=None)


@router.post("/imports/{import_id}/undo", response_class=HTMLResponse)
async def undo(request: Request, console: Writing, import_id: str) -> Response:
    record = await _own(console, import_id)
    try:
        result = await import_jobs.undo(
            console.engine, record.id, channel="console", actor=console.actor,
            max_problems=console.settings.max_reported_problems,
        )  # fmt: skip
    except import_jobs.UndoError as error:
        return page(
            request, "imports/undo.html", console, status_code=409, record=record,
            blockers=None, error=f"This import cannot be undone: {error}.",
        )  # fmt: skip
    if result.status == import_jobs.NotRecorded.BLOCKED:
        return page(
            request, "imports/undo.html", console, status_code=409, record=record,
            blockers=result.issues, left_out=result.problems.left_out(),
        )  # fmt: skip
    c = result.counts  # the undo's own plan: what the import added, it removes, and so on
    return back_to(
        f"/imports/{record.id}",
        f"Undone: {c['removed']} added users removed, {c['added']} removed users restored, "
        f"{c['updated']} users changed back.",
        console,
    )
