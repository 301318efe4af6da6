"""Add user list: upload a CSV file, preview exactly what it would change (a dry run), then
apply it in the background with a progress bar. The result is the import's page in the history."""

import asyncio
import unicodedata
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from roster.domain import csvfile
from roster.domain.error_report import error_report
from roster.domain.fields import BY_NAME, key
from roster.domain.mode import Mode
from roster.domain.plan import Plan
from roster.jobs.imports import ImportReport, Progress, run_import
from roster.store.imports import ImportStatus
from roster.web.console import staging
from roster.web.console.common import Admin, Console, Writing, back_to, page
from roster.web.console.running import runs

router = APIRouter()
SHOWN = 1000  # users per list on the preview; the counts are always whole
SCREENFUL = 12  # a list longer than this starts collapsed
SEARCHED = ("username", "display_name", "email", "department")
TEMPLATE_NAME = "flexwhere - users.csv"
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


def csv_download(text: str, file_name: str) -> Response:
    # A byte-order mark, so that Excel reads the file as UTF-8.
    return Response(
        ("\ufeff" + text).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )


@router.get("/template.csv")
async def template(console: Admin) -> Response:
    return Response(
        csvfile.template().encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{TEMPLATE_NAME}"'},
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


def _about(values: Mapping[str, Any]) -> str:
    return " ".join(str(values.get(name) or "") for name in SEARCHED).casefold()


def _lists(plan: Plan, wanted: str) -> dict[str, list[Any]]:
    """The preview's lists of changes, each by username, only those about someone whose
    username, name, e-mail address or department contains `wanted` (any case)."""
    wanted = wanted.strip().casefold()
    lists: dict[str, list[Any]] = {
        "added": [(a.given, a) for a in plan.added],
        "updated": [(u.values, u) for u in plan.updated],
        "removed": [(r.user.values, r) for r in plan.removed],
    }
    return {
        name: [
            change
            for values, change in sorted(items, key=lambda item: key(str(item[0]["username"])))
            if not wanted or wanted in _about(values)
        ]
        for name, items in lists.items()
    }


def _preview(
    request: Request, console: Console, staged: staging.Staged, report: ImportReport,
    error: str | None = None, wanted: str = "",
) -> Response:  # fmt: skip
    assert report.plan is not None  # a dry run's report carries its plan
    return page(
        request, "uploads/preview.html", console, status_code=409 if error else 200,
        staged=staged, report=report, plan=report.plan, lists=_lists(report.plan, wanted),
        wanted=wanted, shown=SHOWN, screenful=SCREENFUL, fields=BY_NAME, modes=MODES,
        error=error,
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
    return _preview(request, console, staged, await _dry_run(console, staged), wanted=q)


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
    force = False
    if confirm_removals:
        # The admin confirmed a number; if the directory changed since the preview so that the
        # held import would now remove a different number, they confirm again.
        now = await _dry_run(console, staged)
        removing = len(now.plan.removed) if now.plan else 0
        if now.held and str(removing) != confirm_removals:
            return _preview(
                request, console, staged, now,
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
