"""Run an import (CSV file -> plan -> apply) and undo one, for every channel that brings files."""

import asyncio
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster.domain import csvfile
from roster.domain.fields import key
from roster.domain.issues import Issue
from roster.domain.plan import Addition, Current, Mode, Plan, Removal, Update, reconcile
from roster.store import directory, imports, tenants
from roster.store.db import lock_tenant, refresh_statistics, writing

# (phase, done, total): phases are "reading", "planning" and "applying"
Progress = Callable[[str, int, int], None]
ATTEMPTS = 3
ANALYZE_AFTER = 1000  # changes after which the planner's statistics are refreshed
NOTHING = {"added": 0, "updated": 0, "removed": 0, "unchanged": 0, "invalid": 0}


@dataclass
class ImportReport:
    status: str  # applied, dry_run, rejected, held, undone, blocked
    counts: dict[str, int]
    issues: list[Issue] = field(default_factory=list)
    import_id: UUID | None = None
    held: str | None = None
    plan: Plan | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    planned: dict[str, int] | None = None  # what a rejected or held import would have done

    @property
    def ok(self) -> bool:
        if self.status == "dry_run":
            return not self.errors and not self.held  # what would be rejected or held
        return self.status in ("applied", "undone") and not self.errors

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "import_id": str(self.import_id) if self.import_id else None,
            "status": self.status,
            "counts": self.counts,
            "errors": [i.as_dict() for i in self.errors],
            "warnings": [i.as_dict() for i in self.warnings],
        }
        if self.planned is not None:
            data["planned"] = self.planned
        if self.held:
            data["held_reason"] = self.held
        if self.status == "dry_run" and self.plan is not None:
            data["plan"] = describe(self.plan)
        return data


def describe(plan: Plan) -> dict[str, Any]:
    """The exact plan, as a preview shows it."""
    return {
        "added": [a.values["username"] for a in plan.added],
        "updated": [
            {"username": u.user.label, "changes": {k: list(v) for k, v in u.changes.items()}}
            for u in plan.updated
        ],
        "removed": [r.user.label for r in plan.removed],
    }


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


@contextmanager
def _collector_paused() -> Iterator[None]:
    """An import allocates hundreds of thousands of objects that form no cycles; the cyclic
    collector's repeated passes over them would cost about a third of its time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


async def run_import(
    engine: AsyncEngine,
    slug: str,
    data: bytes,
    *,
    mode: Mode,
    channel: str,
    actor: str,
    file_name: str | None = None,
    dry_run: bool = False,
    partial: bool = False,
    force: bool = False,
    max_bytes: int | None = None,
    progress: Progress = _no_progress,
    note: dict[str, Any] | None = None,
) -> ImportReport:
    """Parse, plan and (unless told otherwise) apply one file, in one transaction. `note` goes
    into the import's recorded report as it is (what the channel knows about the file)."""
    with _collector_paused():
        progress("reading", 0, 1)
        # Parsing and planning take seconds for a large file: in a thread, so the server's
        # event loop (SCIM, the console, SFTP) keeps answering meanwhile.
        parsed = await asyncio.to_thread(csvfile.parse, data, max_bytes)
        progress("reading", 1, 1)

        if dry_run:
            async with engine.connect() as conn:
                tenant = await tenants.get(conn, slug)
                current = await directory.load_current(conn, tenant.id)
            plan = await asyncio.to_thread(reconcile, parsed, current, mode, tenant.guard)
            return ImportReport("dry_run", plan.counts, plan.issues, held=plan.held, plan=plan)

        for attempt in range(ATTEMPTS):
            try:
                async with writing(engine) as conn:
                    report = await _import(
                        conn,
                        slug,
                        parsed,
                        mode,
                        channel,
                        actor,
                        file_name,
                        partial,
                        force,
                        progress,
                        note or {},
                    )
                break
            except directory.LOST_TO_ANOTHER_WRITER:
                # Planned anew on the directory as it now is; the error names no user, as the
                # driver's (a unique index's refusal lists the rows) would.
                if attempt == ATTEMPTS - 1:
                    raise directory.ConcurrentChange(
                        f"the directory kept changing while the import was applied ({ATTEMPTS} "
                        "tries); nothing was imported: run it again"
                    ) from None
        if report.status == "applied" and report.plan and report.plan.changes >= ANALYZE_AFTER:
            await refresh_statistics(engine)
        return report


async def _import(
    conn: AsyncConnection,
    slug: str,
    parsed: csvfile.CsvFile,
    mode: Mode,
    channel: str,
    actor: str,
    file_name: str | None,
    partial: bool,
    force: bool,
    progress: Progress,
    note: dict[str, Any],
) -> ImportReport:
    tenant = await tenants.get(conn, slug)
    await lock_tenant(conn, tenant.id)
    progress("planning", 0, 1)
    current = await directory.load_current(conn, tenant.id)
    plan = await asyncio.to_thread(reconcile, parsed, current, mode, tenant.guard)
    progress("planning", 1, 1)
    import_id = uuid4()
    if not parsed.readable or (plan.errors and not partial):
        status = "rejected"
    elif plan.held and not force:
        status = "held"
    else:
        status = "applied"
        await directory.apply(
            conn,
            tenant.id,
            plan,
            channel=channel,
            actor=actor,
            import_id=import_id,
            progress=lambda done, total: progress("applying", done, total),
        )
    counts = plan.counts if status == "applied" else NOTHING
    planned = None if status == "applied" else plan.counts
    report = ImportReport(status, counts, plan.issues, import_id, plan.held, plan, planned)
    await imports.record(
        conn,
        import_id=import_id,
        tenant_id=tenant.id,
        channel=channel,
        actor=actor,
        file_name=file_name,
        mode=mode.value,
        status=status,
        counts=counts,
        report={
            "errors": [i.as_dict() for i in report.errors],
            "warnings": [i.as_dict() for i in report.warnings],
            "held_reason": plan.held,
            "planned": planned,
            **note,
        },
    )
    return report


async def refuse(
    engine: AsyncEngine,
    slug: str,
    issue: Issue,
    *,
    channel: str,
    actor: str,
    file_name: str | None,
    mode: Mode,
) -> ImportReport:
    """Record an import refused before its file was read (too large)."""
    import_id = await record_unread(
        engine,
        slug,
        "rejected",
        channel=channel,
        actor=actor,
        file_name=file_name,
        mode=mode,
        note={"errors": [issue.as_dict()], "warnings": [], "held_reason": None},
    )
    return ImportReport("rejected", NOTHING, [issue], import_id)


async def record_unread(
    engine: AsyncEngine,
    slug: str,
    status: str,
    *,
    channel: str,
    actor: str,
    file_name: str | None,
    mode: Mode,
    note: dict[str, Any],
) -> UUID:
    """Put a file that was not imported (refused, or skipped as a repeat) in the history."""
    import_id = uuid4()
    async with writing(engine) as conn:
        tenant = await tenants.get(conn, slug)
        await imports.record(
            conn,
            import_id=import_id,
            tenant_id=tenant.id,
            channel=channel,
            actor=actor,
            file_name=file_name,
            mode=mode.value,
            status=status,
            counts=NOTHING,
            report={"errors": [], "warnings": [], **note},
        )
    return import_id


class UndoError(Exception):
    pass


async def undo(engine: AsyncEngine, import_id: UUID, *, channel: str, actor: str) -> ImportReport:
    """Restore what an import changed, if nobody changed those users since."""
    async with writing(engine) as conn:
        # An import id is global, so the operator's CLI can name one without its organization;
        # everything after this is scoped to the import's organization.
        original = await imports.find(conn, import_id)
        if original is None:
            raise UndoError(f"there is no import {import_id}")
        if original.status != "applied":
            raise UndoError(f"import {import_id} is {original.status}; only applied ones undo")
        await lock_tenant(conn, original.tenant_id)
        events = await imports.events(conn, original.tenant_id, import_id)
        current = {u.id: u for u in await directory.load_current(conn, original.tenant_id)}
        plan, blockers = _reverse(events, current)
        if blockers:
            return ImportReport("blocked", plan.counts, blockers, import_id)
        undo_id = uuid4()
        await directory.apply(
            conn, original.tenant_id, plan, channel=channel, actor=actor, import_id=undo_id
        )
        await imports.set_status(conn, original.tenant_id, import_id, "undone")
        await imports.record(
            conn,
            import_id=undo_id,
            tenant_id=original.tenant_id,
            channel=channel,
            actor=actor,
            file_name=f"undo of {import_id}",
            mode="undo",
            status="applied",
            counts=plan.counts,
            report={"errors": [], "warnings": [], "undoes": str(import_id)},
        )
        return ImportReport("undone", plan.counts, [], undo_id, plan=plan)


def _reverse(
    events: list[dict[str, Any]], current: dict[UUID, Current]
) -> tuple[Plan, list[Issue]]:
    plan = Plan(Mode.REPLACE)
    blockers: list[Issue] = []
    reclaimed: list[tuple[Current, str]] = []  # users who get an e-mail address back
    for event in events:
        user = current.get(event["user_id"])
        name = (event["before"] or event["after"] or {}).get("username", str(event["user_id"]))
        if user is None:
            blockers.append(Issue(None, None, "purged", f"{name} has been purged since"))
            continue
        if user.version != event["user_version"]:
            blockers.append(
                Issue(None, None, "changed_since", f"{user.label} has changed since the import")
            )
            continue
        match event["action"]:
            case "added" | "restored":
                plan.removed.append(Removal(user))
            case "updated":
                before = event["before"]
                plan.updated.append(
                    Update(None, user, {k: (user.values[k], v) for k, v in before.items()})
                )
                if "email" in before:
                    reclaimed.append((user, before["email"]))
            case "removed":
                plan.added.append(
                    Addition(None, user.values, revive=user, managed_by=user.managed_by)
                )
                reclaimed.append((user, user.values["email"]))
    # An address this undo gives back must not belong to someone who keeps it meanwhile.
    leaving = {r.user.id for r in plan.removed}
    leaving |= {u.user.id for u in plan.updated if "email" in u.changes}
    owners = {u.email_key: u for u in current.values() if not u.removed and u.id not in leaving}
    for user, email in reclaimed:
        owner = owners.get(key(email))
        if owner is not None and owner.id != user.id:
            blockers.append(
                Issue(
                    None,
                    None,
                    "email_taken",
                    f"{user.label}'s e-mail address {email} now belongs to {owner.label}",
                )
            )
    return plan, blockers
