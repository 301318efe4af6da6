"""Run an import (CSV file -> plan -> apply) and undo one, for every channel that brings files."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, BinaryIO
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from roster import collector, metrics
from roster.domain import csvfile
from roster.domain.fields import key
from roster.domain.issues import Issue, Problems
from roster.domain.mode import Mode
from roster.domain.plan import Addition, Current, Plan, Reconciler, Removal, Update
from roster.settings import MAX_REPORTED_PROBLEMS
from roster.store import directory, directory_reads, dropboxes, imports, tenants
from roster.store.db import lock_tenant, refresh_statistics, writing
from roster.store.imports import ImportStatus

# (phase, done, total): phases are "reading", "planning" and "applying"
Progress = Callable[[str, int, int], None]
# A channel's own bookkeeping, written in the import's transaction after its record
Also = Callable[[AsyncConnection], Awaitable[None]]
ATTEMPTS = 3
ANALYZE_AFTER = 1000  # changes after which the planner's statistics are refreshed
NOTHING = {"added": 0, "updated": 0, "removed": 0, "unchanged": 0, "invalid": 0}


class NotRecorded(StrEnum):
    """What a run came to when the import history keeps nothing of it."""

    DRY_RUN = "dry_run"  # the plan, shown; nothing written
    BLOCKED = "blocked"  # an undo that later changes to its users block


@dataclass
class ImportReport:
    status: ImportStatus | NotRecorded  # as recorded in the history, or NotRecorded
    counts: dict[str, int]
    # As kept and shown: at most the bound, with the totals (the plan has every one).
    problems: Problems = field(default_factory=Problems)
    import_id: UUID | None = None
    held: str | None = None
    plan: Plan | None = None
    planned: dict[str, int] | None = None  # what a rejected or held import would have done

    @property
    def errors(self) -> Sequence[Issue]:
        return self.problems.errors

    @property
    def warnings(self) -> Sequence[Issue]:
        return self.problems.warnings

    @property
    def issues(self) -> list[Issue]:
        return self.problems.issues

    @property
    def ok(self) -> bool:
        errors = self.problems.error_total
        if self.status == NotRecorded.DRY_RUN:
            return not errors and not self.held  # what would be rejected or held
        return self.status in (ImportStatus.APPLIED, ImportStatus.UNDONE) and not errors

    @classmethod
    def recorded(cls, record: imports.ImportRecord) -> "ImportReport":
        """The report of an import as its history keeps it."""
        held, planned = record.report.get("held_reason"), record.report.get("planned")
        problems = Problems.stored(record.report)
        return cls(record.status, record.counts, problems, record.id, held, planned=planned)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "import_id": str(self.import_id) if self.import_id else None,
            "status": self.status,
            "counts": self.counts,
            **self.problems.as_json(),
        }
        if self.planned is not None:
            data["planned"] = self.planned
        if self.held:
            data["held_reason"] = self.held
        if self.status == NotRecorded.DRY_RUN and self.plan is not None:
            data["plan"] = describe(self.plan)
        return data


def describe(plan: Plan) -> dict[str, Any]:
    """The exact plan, as a preview shows it."""
    return {
        "added": [a.given["username"] for a in plan.added],  # every channel gives one
        "updated": [
            {"username": u.user.label, "changes": {k: list(v) for k, v in u.changes.items()}}
            for u in plan.updated
        ],
        "removed": [r.user.label for r in plan.removed],
    }


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


async def run_import(
    engine: AsyncEngine,
    slug: str,
    data: bytes | BinaryIO,
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
    import_id: UUID | None = None,
    also: Also | None = None,
    max_problems: int = MAX_REPORTED_PROBLEMS,
) -> ImportReport:
    """Parse, plan and (unless told otherwise) apply one file (its bytes, or a binary file
    open at its start), in one transaction. `note` goes into the import's recorded report as
    it is (what the channel knows about the file); `import_id` is the id it is recorded under
    (a new one unless given); the report keeps the first `max_problems` problems and the
    totals."""
    with collector.paused(), metrics.import_run(slug, channel, not dry_run) as counted:
        progress("reading", 0, 1)
        # Parsing and planning take seconds for a large file: in a thread, so the server's
        # event loop (SCIM, the console, SFTP) keeps answering meanwhile.
        parsed = await asyncio.to_thread(csvfile.parse, data, max_bytes)
        progress("reading", 1, 1)

        if dry_run:
            async with engine.connect() as conn:
                tenant = await tenants.get(conn, slug)
                plan = await _plan(conn, tenant, parsed, mode)
            problems = await asyncio.to_thread(_kept, parsed, plan, max_problems)
            return ImportReport(
                NotRecorded.DRY_RUN, plan.counts, problems, held=plan.held, plan=plan
            )

        for attempt in range(ATTEMPTS):
            try:
                async with writing(engine, many_rows=True) as conn:
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
                        import_id or uuid4(),
                        also,
                        max_problems,
                    )
                break
            except directory.LOST_TO_ANOTHER_WRITER as error:
                if not directory.lost_to_another_writer(error):
                    raise
                # Planned anew on the directory as it now is; the error names no user, as the
                # driver's (a unique index's refusal lists the rows) would.
                if attempt == ATTEMPTS - 1:
                    raise directory.ConcurrentChange(
                        f"the directory kept changing while the import was applied ({ATTEMPTS} "
                        "tries); nothing was imported: run it again"
                    ) from None
        if (
            report.status == ImportStatus.APPLIED
            and report.plan
            and report.plan.changes >= ANALYZE_AFTER
        ):
            await refresh_statistics(engine)
        counted.result = report.status
        return report


def _kept(parsed: csvfile.CsvFile, plan: Plan, max_problems: int) -> Problems:
    """The problems an import keeps, each naming the person its row is about."""
    problems = Problems.of(plan.issues, max_problems)
    return problems.naming(parsed.people(problems.rows))


async def _plan(
    conn: AsyncConnection, tenant: tenants.Tenant, parsed: csvfile.CsvFile, mode: Mode
) -> Plan:
    """The file's plan against the directory as it streams past. Each part of it is seen
    between the driver's reads (milliseconds); the plan's last step, which walks the whole
    file, runs in a thread so the server's event loop keeps answering."""
    reconciler = Reconciler(parsed, mode, tenant.guard)
    async for users in directory_reads.current_users(conn, tenant.id):
        reconciler.see(users)
    return await asyncio.to_thread(reconciler.plan)


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
    import_id: UUID,
    also: Also | None,
    max_problems: int,
) -> ImportReport:
    tenant = await tenants.get(conn, slug)
    await lock_tenant(conn, tenant.id)
    progress("planning", 0, 1)
    plan = await _plan(conn, tenant, parsed, mode)
    progress("planning", 1, 1)
    if not parsed.readable or (plan.errors and not partial):
        status = ImportStatus.REJECTED
    elif plan.held and not force:
        status = ImportStatus.HELD
    else:
        status = ImportStatus.APPLIED
        await directory.apply(
            conn,
            tenant.id,
            plan,
            channel=channel,
            actor=actor,
            import_id=import_id,
            progress=lambda done, total: progress("applying", done, total),
        )
    counts = plan.counts if status == ImportStatus.APPLIED else NOTHING
    planned = None if status == ImportStatus.APPLIED else plan.counts
    problems = await asyncio.to_thread(_kept, parsed, plan, max_problems)
    report = ImportReport(status, counts, problems, import_id, plan.held, plan, planned)
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
            **problems.as_json(),
            "held_reason": plan.held,
            "planned": planned,
            **note,
        },
    )
    if also is not None:
        await also(conn)
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
    one = Problems.of([issue], 1)
    import_id = await record_unread(
        engine,
        slug,
        ImportStatus.REJECTED,
        channel=channel,
        actor=actor,
        file_name=file_name,
        mode=mode,
        note={**one.as_json(), "held_reason": None},
    )
    return ImportReport(ImportStatus.REJECTED, NOTHING, one, import_id)


async def record_unread(
    engine: AsyncEngine,
    slug: str,
    status: ImportStatus,
    *,
    channel: str,
    actor: str,
    file_name: str | None,
    mode: Mode,
    note: dict[str, Any],
    import_id: UUID | None = None,
    also: Also | None = None,
) -> UUID:
    """Put a file that was not imported (refused, or skipped as a repeat) in the history."""
    import_id = import_id or uuid4()
    with metrics.import_run(slug, channel) as counted:
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
            if also is not None:
                await also(conn)
        counted.result = status
    return import_id


class UndoError(Exception):
    pass


async def undo(
    engine: AsyncEngine,
    import_id: UUID,
    *,
    channel: str,
    actor: str,
    max_problems: int = MAX_REPORTED_PROBLEMS,
) -> ImportReport:
    """Restore what an import changed, if nobody changed those users since. An undo of an undo
    puts the import that one undid back in effect, and each status in the chain follows. What
    blocks it is named, the first `max_problems` of them with the total."""
    async with writing(engine, many_rows=True) as conn:
        # An import id is global, so the operator's CLI can name one without its organization;
        # everything after this is scoped to the import's organization.
        original = await imports.find(conn, import_id)
        if original is None:
            raise UndoError(f"there is no import {import_id}")
        if original.status != ImportStatus.APPLIED:
            raise UndoError(f"import {import_id} is {original.status}; only applied ones undo")
        await lock_tenant(conn, original.tenant_id)
        events = await imports.events(conn, original.tenant_id, import_id)
        current = {u.id: u for u in await directory_reads.load_current(conn, original.tenant_id)}
        plan, blockers = _reverse(events, current)
        if blockers:
            return ImportReport(
                NotRecorded.BLOCKED, plan.counts, Problems.of(blockers, max_problems), import_id
            )
        undo_id = uuid4()
        await directory.apply(
            conn, original.tenant_id, plan, channel=channel, actor=actor, import_id=undo_id
        )
        await imports.set_status(conn, original.tenant_id, import_id, ImportStatus.UNDONE)
        await _back_in_effect(conn, original)
        await dropboxes.forget_file(conn, original.tenant_id)
        await imports.record(
            conn,
            import_id=undo_id,
            tenant_id=original.tenant_id,
            channel=channel,
            actor=actor,
            file_name=f"undo of {import_id}",
            mode="undo",
            status=ImportStatus.APPLIED,
            counts=plan.counts,
            report={"errors": [], "warnings": [], "undoes": str(import_id)},
        )
        return ImportReport(ImportStatus.UNDONE, plan.counts, Problems(), undo_id, plan=plan)


async def _back_in_effect(conn: AsyncConnection, undone: imports.ImportRecord) -> None:
    """`undone` was an undo: the import it undid is in effect again, so the one that one undid
    (if it was an undo too) is not, and so on down the chain."""
    status = ImportStatus.APPLIED
    undid = undone.report.get("undoes")
    while undid is not None:
        found = await imports.find(conn, UUID(undid))
        if found is None or found.tenant_id != undone.tenant_id:
            return
        await imports.set_status(conn, found.tenant_id, found.id, status)
        status = ImportStatus.UNDONE if status == ImportStatus.APPLIED else ImportStatus.APPLIED
        undid = found.report.get("undoes")


def _reverse(
    events: list[dict[str, Any]], current: dict[UUID, Current]
) -> tuple[Plan, list[Issue]]:
    plan = Plan()
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
