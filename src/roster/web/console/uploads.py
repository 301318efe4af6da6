"""Add user list: upload a CSV file, preview exactly what it would change (a dry run), then
apply it in the background with a progress bar. The result is the import's page in the history."""

import asyncio
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any

from cachetools import TTLCache
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from roster.domain import csvfile, user_list
from roster.domain.error_report import error_report
from roster.domain.fields import BY_NAME, key
from roster.domain.mode import Mode
from roster.jobs.imports import ImportReport, Progress, run_import
from roster.store.directory import search_text
from roster.store.imports import ImportStatus
from roster.web.console import staging
from roster.web.console.common import Admin, Console, Writing, back_to, page
from roster.web.console.downloads import csv_download
from roster.web.console.running import runs

router = APIRouter()
SHOWN = 1000  # users per list on the preview; the counts are always whole
SCREENFUL = 12  # a list longer than this starts collapsed
MODES = {
    Mode.ADD: (
        "Add these users",
        "New people in the file are added and existing ones updated; nobody is removed.",
    ),
    Mode.REPLACE: (
        "Replace the current user list",
        "The user list becomes the file: users the file does not name are removed "
        "(except users managed by SCIM and the last admin).",
    ),
}


@router.get("/template.csv")
async def template(console: Admin) -> Response:
    return Response(
        csvfile.template().encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{user_list.FILE_NAME}"'},
    )


def _form(
    request: Request, console: Console, error: str | None = None, mode: str = "add"
) -> Response:
    return page(
        request, "uploads/new.html", console, status_code=400 if error else 200,
        error=error, modes=MODES, chosen=mode, max_bytes=console.settings.max_import_bytes,
    )  # fmt: skip


@router.get("/uploads/new", response_class=HTMLResponse)
async def new(request: Request, console: Admin) -> Response:
    return _form(request, console)


def _file_name(raw: str | None) -> str:
    """The name as the admin knows it: no folders (some browsers send them), no controls."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return name[:200] or "upload.csv"


@router.post("/uploads", response_class=HTMLResponse)
async def upload(
    request: Request,
    console: Writing,
    file: Annotated[UploadFile | None, File()] = None,
    mode: Annotated[str, Form()] = "",
) -> Response:
    if mode not in (Mode.ADD, Mode.REPLACE):
        return _form(request, console, "Choose whether to add these users or replace the list.")
    if file is None or not file.filename:
        return _form(request, console, "Choose a CSV file to upload.", mode)
    limit = console.settings.max_import_bytes
    data = await file.read(limit + 1)  # never more than the limit in memory
    if len(data) > limit:
        size = max(file.size or 0, len(data))
        problem = csvfile.too_large(size, limit).message
        return _form(request, console, f"This file cannot be used: {problem}.", mode)
    parsed = await asyncio.to_thread(csvfile.parse, data, limit)
    if not parsed.readable:
        problems = "; ".join(str(i) for i in parsed.errors if i.row is None or i.row <= 1)
        message = problems or "; ".join(str(i) for i in parsed.errors[:5])
        return _form(request, console, f"This file cannot be read: {message}.", mode)
    staged = await asyncio.to_thread(
        staging.keep, console.settings.data_dir, console.tenant.id, console.admin.user_id,
        _file_name(file.filename), Mode(mode), data,
    )  # fmt: skip
    return back_to(f"/uploads/{staged.id}")


def _staged(console: Console, upload_id: str) -> staging.Staged:
    staged = staging.find(
        console.settings.data_dir, upload_id, console.tenant.id, console.admin.user_id
    )
    if staged is None:  # expired, never existed, or someone else's: all the same to this admin
        raise HTTPException(404)
    return staged


async def _dry_run(console: Console, staged: staging.Staged) -> ImportReport:
    data = await asyncio.to_thread(staged.data)  # up to the import limit, read off the loop
    return await run_import(
        console.engine, console.tenant.slug, data, mode=staged.mode, channel="csv",
        actor=console.actor, file_name=staged.file_name, dry_run=True,
        max_bytes=console.settings.max_import_bytes,
        max_problems=console.settings.max_reported_problems,
    )  # fmt: skip


@dataclass(frozen=True)
class _Shown:
    """A preview's dry run, and its lists of changes each sorted by username, every change with
    the text a search looks in (as the users list's search: `directory.search_text`)."""

    report: ImportReport
    lists: dict[str, list[tuple[str, Any]]]


def _shown(report: ImportReport) -> _Shown:
    plan = report.plan
    assert plan is not None  # a dry run's report carries its plan
    lists: dict[str, list[tuple[Mapping[str, Any], Any]]] = {
        "added": [(a.given, a) for a in plan.added],
        "updated": [(u.values, u) for u in plan.updated],
        "removed": [(r.user.values, r) for r in plan.removed],
    }
    return _Shown(
        report,
        {
            name: [
                (search_text(dict(values)), change)
                for values, change in sorted(items, key=lambda item: key(item[0]["username"]))
            ]
            for name, items in lists.items()
        },
    )


# The last previews shown, by upload: a search narrows one without planning the file again (a
# large file's dry run takes seconds); the preview itself always plans afresh.
_SHOWN: TTLCache[str, _Shown] = TTLCache(maxsize=2, ttl=300)


async def _fresh(console: Console, staged: staging.Staged) -> _Shown:
    shown = await asyncio.to_thread(_shown, await _dry_run(console, staged))
    _SHOWN[staged.id] = shown
    return shown


def _preview(
    request: Request, console: Console, staged: staging.Staged, shown: _Shown,
    error: str | None = None, wanted: str = "",
) -> Response:  # fmt: skip
    """The preview page; with `wanted`, each list only the changes about someone whose
    username, name, e-mail address or department contains it (any case)."""
    text = wanted.strip().casefold()
    lists = {
        name: [change for about, change in items if text in about]
        for name, items in shown.lists.items()
    }
    return page(
        request, "uploads/preview.html", console, status_code=409 if error else 200,
        staged=staged, report=shown.report, plan=shown.report.plan, lists=lists, wanted=wanted,
        shown=SHOWN, screenful=SCREENFUL, fields=BY_NAME, modes=MODES, error=error,
    )  # fmt: skip


@router.get("/uploads/{upload_id}", response_class=HTMLResponse)
async def preview(
    request: Request, console: Admin, upload_id: str,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:  # fmt: skip
    staged = _staged(console, upload_id)
    run = runs(request).get(upload_id, console.tenant.id, console.admin.user_id)
    if run is not None and not run.finished:
        return back_to(f"/uploads/{upload_id}/progress")
    shown = (_SHOWN.get(staged.id) if q else None) or await _fresh(console, staged)
    return _preview(request, console, staged, shown, wanted=q)


@router.get("/uploads/{upload_id}/errors.csv")
async def preview_errors(console: Admin, upload_id: str) -> Response:
    report = await _dry_run(console, _staged(console, upload_id))
    return csv_download(error_report(report.problems), "preview - errors.csv")


@router.post("/uploads/apply", response_class=HTMLResponse)
async def apply(
    request: Request,
    console: Writing,
    upload: Annotated[str, Form()] = "",
    partial: Annotated[str, Form()] = "",
    confirm_removals: Annotated[str, Form()] = "",
) -> Response:
    staged = _staged(console, upload)
    _SHOWN.pop(staged.id, None)
    force = False
    if confirm_removals:
        # The admin confirmed a number; if the directory changed since the preview so that the
        # held import would now remove a different number, they confirm again.
        now = await _dry_run(console, staged)
        removing = len(now.plan.removed) if now.plan else 0
        if now.held and str(removing) != confirm_removals:
            return _preview(
                request, console, staged, await asyncio.to_thread(_shown, now),
                f"The directory changed since the preview: this file would now remove "
                f"{removing} users. Check the list and confirm again.",
            )  # fmt: skip
        force = True
    settings, slug, actor = console.settings, console.tenant.slug, console.actor

    async def work(progress: Progress) -> ImportReport:
        report = await run_import(
            console.engine, slug, await asyncio.to_thread(staged.data), mode=staged.mode,
            channel="csv", actor=actor, file_name=staged.file_name, partial=bool(partial),
            force=force, max_bytes=settings.max_import_bytes, progress=progress,
            max_problems=settings.max_reported_problems,
        )  # fmt: skip
        if report.status == ImportStatus.APPLIED:  # held or rejected: kept, to decide again
            staging.discard(settings.data_dir, staged.id)
        return report

    runs(request).start(staged.id, console.tenant.id, console.admin.user_id, work)
    return back_to(f"/uploads/{staged.id}/progress")


PHASES = {
    "starting": "Starting",
    "reading": "Reading the file",
    "planning": "Comparing the file with the directory",
    "applying": "Applying the changes",
}


def _finished_at(upload_id: str, report: ImportReport | None) -> str | None:
    if report is None or report.import_id is None:
        return None
    return f"/imports/{report.import_id}" + (
        "" if report.status == ImportStatus.APPLIED else f"?upload={upload_id}"
    )


@router.get("/uploads/{upload_id}/progress", response_class=HTMLResponse)
async def progress(request: Request, console: Admin, upload_id: str) -> Response:
    run = runs(request).get(upload_id, console.tenant.id, console.admin.user_id)
    if run is None:
        raise HTTPException(404)
    target = _finished_at(upload_id, run.report)
    if target is not None:
        return RedirectResponse(target, status_code=303)
    return page(
        request, "uploads/progress.html", console, run=run, phase=PHASES.get(run.phase, run.phase),
        error=run.failed,
    )  # fmt: skip


@router.get("/uploads/{upload_id}/progress.json")
async def progress_json(request: Request, console: Admin, upload_id: str) -> JSONResponse:
    run = runs(request).get(upload_id, console.tenant.id, console.admin.user_id)
    if run is None:
        raise HTTPException(404)
    return JSONResponse(
        {
            "phase": run.phase,
            "done": run.done,
            "total": run.total,
            "percent": run.percent,
            "finished": run.finished,
            "failed": run.failed,
            "next": _finished_at(upload_id, run.report),
        }
    )
