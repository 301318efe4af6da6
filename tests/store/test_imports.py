"""Imports against a real database (SQLite, and PostgreSQL where configured): what lands in the
directory, the audit trail, the history and the sessions."""

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import sqlalchemy as sa

from roster.domain.mode import Mode
from roster.jobs import imports as jobs
from roster.store import directory, directory_reads, imports, tenants
from roster.store.db import writing
from roster.store.schema import audit_events, users
from tests.factories import csv_bytes, people, person
from tests.sessions import session_open, sign_in


async def run(engine, tenant, rows, mode=Mode.REPLACE, **options):
    options.setdefault("channel", "csv")
    options.setdefault("actor", "admin@example.com")
    return await jobs.run_import(engine, tenant.slug, csv_bytes(rows), mode=mode, **options)


async def usernames(engine, tenant):
    async with engine.connect() as conn:
        return sorted(u["username"] for u in await directory_reads.list_users(conn, tenant.id))


async def by_username(engine, tenant):
    async with engine.connect() as conn:
        return {u["username"]: u for u in await directory_reads.list_users(conn, tenant.id)}


async def audit(engine, tenant, **where):
    query = sa.select(audit_events).where(audit_events.c.tenant_id == tenant.id)
    for name, value in where.items():
        query = query.where(audit_events.c[name] == value)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def test_first_import_adds_users_with_audit_and_history(engine, tenant):
    report = await run(engine, tenant, people(3), file_name="flexwhere - users.csv")
    assert report.status == "applied" and report.counts["added"] == 3
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    events = await audit(engine, tenant, import_id=report.import_id)
    assert len(events) == 3
    assert {(e["action"], e["channel"], e["actor"]) for e in events} == {
        ("added", "csv", "admin@example.com")
    }
    assert events[0]["after"]["email"].endswith("@example.com")
    async with engine.connect() as conn:
        (record,) = await imports.history(conn, tenant.id)
    assert (record.status, record.mode, record.file_name) == (
        "applied",
        "replace",
        "flexwhere - users.csv",
    )
    assert record.counts["added"] == 3


async def test_reimport_is_a_no_op_and_keeps_sessions(engine, tenant):
    await run(engine, tenant, people(5))
    user = (await by_username(engine, tenant))["user000001"]
    session = await sign_in(engine, tenant, user["id"])
    report = await run(engine, tenant, people(5))
    assert report.counts == {"added": 0, "updated": 0, "removed": 0, "unchanged": 5, "invalid": 0}
    assert await audit(engine, tenant, import_id=report.import_id) == []
    assert await session_open(engine, tenant, session)


async def test_replace_removes_and_revokes_at_once(engine, tenant):
    await run(engine, tenant, people(4))
    before = await by_username(engine, tenant)
    leaver = await sign_in(engine, tenant, before["user000003"]["id"])
    stayer = await sign_in(engine, tenant, before["user000000"]["id"])
    report = await run(engine, tenant, people(3))
    assert report.counts["removed"] == 1
    assert "user000003" not in await usernames(engine, tenant)
    assert not await session_open(engine, tenant, leaver)
    assert await session_open(engine, tenant, stayer)
    (event,) = await audit(engine, tenant, import_id=report.import_id)
    assert event["action"] == "removed" and event["before"]["username"] == "user000003"


async def test_email_change_revokes_but_title_change_does_not(engine, tenant):
    await run(engine, tenant, people(2))
    found = await by_username(engine, tenant)
    moved = await sign_in(engine, tenant, found["user000000"]["id"])
    promoted = await sign_in(engine, tenant, found["user000001"]["id"])
    rows = [person(0, CSV_EMAIL="new0@example.com"), person(1, CSV_TITLE="Director")]
    report = await run(engine, tenant, rows)
    assert report.counts["updated"] == 2
    assert not await session_open(engine, tenant, moved)
    assert await session_open(engine, tenant, promoted)
    events = {e["user_id"]: e for e in await audit(engine, tenant, import_id=report.import_id)}
    assert events[found["user000001"]["id"]]["before"] == {"title": "Manager"}
    assert events[found["user000001"]["id"]]["after"] == {"title": "Director"}


async def test_unquoted_separator_in_a_value_removes_nobody(engine, tenant):
    """An export with `Jansen; Jan` unquoted: the row's fields shift and cannot be trusted."""
    await run(engine, tenant, people(3))
    header = "CSV_DISPLAYNAME;CSV_USERNAME;CSV_FIRSTNAME;CSV_SURNAME;CSV_EMAIL"
    lines = [header, "Jansen; Jan;user000000;Jan;Jansen;user000000@example.com"]
    lines.append("Piet P;user000001;Piet;Pieters;user000001@example.com")
    report = await jobs.run_import(
        engine,
        tenant.slug,
        "\r\n".join(lines).encode(),
        mode=Mode.REPLACE,
        channel="sftp",
        actor="drop box",
        partial=True,
    )
    assert report.status == "applied" and report.counts["removed"] == 0
    assert [i.code for i in report.errors] == ["field_count"]
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]


async def test_rejected_and_held_imports_report_zero_counts_and_the_plan(engine, tenant):
    await run(engine, tenant, people(40))
    held = await run(engine, tenant, people(20))
    assert held.counts == jobs.NOTHING and held.planned and held.planned["removed"] == 20
    async with engine.connect() as conn:
        record = (await imports.history(conn, tenant.id))[0]
    assert record.status == "held" and record.counts == jobs.NOTHING
    assert record.report["planned"]["removed"] == 20


async def test_errors_reject_the_whole_file_unless_partial(engine, tenant):
    await run(engine, tenant, people(3))
    rows = [person(0, CSV_TITLE="Boss"), person(1, CSV_EHBO="x"), person(5)]
    rejected = await run(engine, tenant, rows)
    assert rejected.status == "rejected" and not rejected.ok
    assert [(e.row, e.column, e.code) for e in rejected.errors] == [(3, "CSV_EHBO", "invalid_flag")]
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    assert (await by_username(engine, tenant))["user000000"]["title"] == "Manager"

    partial = await run(engine, tenant, rows, partial=True)
    assert partial.status == "applied"
    assert partial.counts == {"added": 1, "updated": 1, "removed": 1, "unchanged": 0, "invalid": 1}
    # user000001's row was invalid: kept, untouched; user000002 was not in the file: removed
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000005"]
    async with engine.connect() as conn:
        statuses = [r.status for r in await imports.history(conn, tenant.id)]
    assert statuses == ["applied", "rejected", "applied"]


async def test_an_import_keeps_the_first_problems_and_how_many_in_all(engine, tenant):
    await run(engine, tenant, people(3))
    # An export with a placeholder address on every row but the first three people's.
    rows = people(3) + [person(n, CSV_EMAIL="nobody@example.com") for n in range(3, 2503)]
    data = csv_bytes(rows)
    report = await run(engine, tenant, rows, partial=True)
    assert report.status == "applied" and report.counts["invalid"] == 2500
    assert report.counts["unchanged"] == 3 and report.counts["removed"] == 0
    assert report.plan is not None and len(report.plan.errors) == 2500  # the plan knows all
    kept = report.problems
    assert (len(kept.errors), kept.error_total, kept.warning_total) == (1000, 2500, 0)
    assert [e.row for e in kept.errors] == list(range(5, 1005))
    async with engine.connect() as conn:
        (record, _) = await imports.history(conn, tenant.id)
    assert record.report["error_count"] == 2500 and len(record.report["errors"]) == 1000
    assert record.problems == kept and record.error_count == 2500
    assert len(json.dumps(record.report)) < len(data)

    dry = await run(engine, tenant, rows, dry_run=True, max_problems=10)
    assert dry.problems.shown == 10 and dry.problems.error_total == 2500
    assert dry.as_json()["error_count"] == 2500 and len(dry.as_json()["errors"]) == 10
    assert dry.plan is not None and dry.plan.invalid == 2500 and not dry.ok


async def test_deletion_guard_holds_until_forced(engine, tenant):
    await run(engine, tenant, people(40))
    held = await run(engine, tenant, people(20))
    assert held.status == "held" and "20 of 40" in (held.held or "") and not held.ok
    assert len(await usernames(engine, tenant)) == 40
    forced = await run(engine, tenant, people(20), force=True)
    assert forced.status == "applied" and len(await usernames(engine, tenant)) == 20


async def test_dry_run_writes_nothing(engine, tenant):
    await run(engine, tenant, people(3))
    report = await run(engine, tenant, [person(0, CSV_TITLE="Boss"), person(7)], dry_run=True)
    assert report.status == "dry_run"
    assert jobs.describe(report.plan) == {
        "added": ["user000007"],
        "updated": [{"username": "user000000", "changes": {"title": ["Manager", "Boss"]}}],
        "removed": ["user000001", "user000002"],
    }
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    async with engine.connect() as conn:
        assert len(await imports.history(conn, tenant.id)) == 1


async def test_returning_user_gets_the_same_id(engine, tenant):
    await run(engine, tenant, people(3))
    original = (await by_username(engine, tenant))["user000002"]["id"]
    await run(engine, tenant, people(2))
    report = await run(engine, tenant, people(3))
    assert report.counts["added"] == 1
    assert (await by_username(engine, tenant))["user000002"]["id"] == original


async def test_undo_restores_every_change(engine, tenant):
    await run(engine, tenant, people(4))
    before = await by_username(engine, tenant)
    rows = [person(0, CSV_TITLE="Boss"), person(1), person(2), person(9)]
    report = await run(engine, tenant, rows)
    assert report.counts == {"added": 1, "updated": 1, "removed": 1, "unchanged": 2, "invalid": 0}
    undo = await jobs.undo(engine, report.import_id, channel="cli", actor="ops")
    assert undo.status == "undone"
    after = await by_username(engine, tenant)
    assert sorted(after) == sorted(before)
    for name, user in before.items():
        assert {k: v for k, v in after[name].items()} == user
    async with engine.connect() as conn:
        history = {r.id: r.status for r in await imports.history(conn, tenant.id)}
    assert history[report.import_id] == "undone"
    with pytest.raises(jobs.UndoError):
        await jobs.undo(engine, report.import_id, channel="cli", actor="ops")


async def test_statuses_follow_what_is_in_effect_through_undos_of_undos(engine, tenant):
    await run(engine, tenant, people(2))
    imported = await run(engine, tenant, [person(0, CSV_TITLE="Boss"), person(1), person(7)])
    assert imported.import_id

    async def statuses() -> dict:
        async with engine.connect() as conn:
            return {r.id: r.status for r in await imports.history(conn, tenant.id)}

    async def title_and_count() -> tuple:
        users = await by_username(engine, tenant)
        return users["user000000"]["title"], len(users)

    chain = [imported.import_id]
    for _ in range(3):  # undo the import, undo that undo, undo that one
        undone = await jobs.undo(engine, chain[-1], channel="cli", actor="ops")
        assert undone.status == "undone" and undone.import_id
        chain.append(undone.import_id)
    # The import's changes are out of effect: it and the second undo are undone.
    assert await title_and_count() == ("Manager", 2)
    assert [(await statuses())[i] for i in chain] == [
        imports.ImportStatus.UNDONE,
        imports.ImportStatus.APPLIED,
        imports.ImportStatus.UNDONE,
        imports.ImportStatus.APPLIED,
    ]
    await jobs.undo(engine, chain[-1], channel="cli", actor="ops")
    assert await title_and_count() == ("Boss", 3)
    found = await statuses()
    assert [found[i] for i in chain] == ["applied", "undone", "applied", "undone"]


async def test_undo_is_blocked_by_a_later_change(engine, tenant):
    await run(engine, tenant, people(2))
    first = await run(engine, tenant, [person(0, CSV_TITLE="Boss"), person(1)])
    await run(engine, tenant, [person(0, CSV_TITLE="Chief"), person(1)])
    blocked = await jobs.undo(engine, first.import_id, channel="cli", actor="ops")
    assert blocked.status == "blocked" and not blocked.ok
    assert [i.code for i in blocked.issues] == ["changed_since"]
    assert "user000000" in blocked.issues[0].message
    assert (await by_username(engine, tenant))["user000000"]["title"] == "Chief"


async def test_purge_after_retention(engine, tenant):
    await run(engine, tenant, people(2))
    await run(engine, tenant, people(1))
    async with writing(engine) as conn:
        assert await directory.purge_removed(conn, datetime.now(UTC) + timedelta(days=29)) == 0
        assert await directory.purge_removed(conn, datetime.now(UTC) + timedelta(days=31)) >= 1
        remaining = (
            await conn.execute(
                sa.select(sa.func.count()).select_from(users).where(users.c.tenant_id == tenant.id)
            )
        ).scalar_one()
    assert remaining == 1


async def test_organizations_never_touch_each_other(engine, tenant):
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"o-{uuid4().hex[:8]}", "Other")
    await run(engine, tenant, people(3))
    await run(engine, other, people(1))  # same usernames and e-mails, another organization
    await run(engine, other, people(1, start=50))  # replace: removes only other's user000000
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    assert await usernames(engine, other) == ["user000050"]


async def test_a_user_changed_meanwhile_aborts_the_write(engine, tenant):
    await run(engine, tenant, people(2))
    async with engine.connect() as conn:
        current = await directory_reads.load_current(conn, tenant.id)
    from roster.domain import csvfile
    from roster.domain.plan import reconcile

    plan = reconcile(
        csvfile.parse(csv_bytes([person(0, CSV_TITLE="Boss"), person(1)])), current, Mode.REPLACE
    )
    async with writing(engine) as conn:  # someone else edits user000000 first
        await conn.execute(
            users.update()
            .where(users.c.tenant_id == tenant.id, users.c.username == "user000000")
            .values(title="Other", version=users.c.version + 1)
        )
    with pytest.raises(directory.ConcurrentChange):
        async with writing(engine) as conn:
            await directory.apply(conn, tenant.id, plan, channel="csv", actor="x")
    assert (await by_username(engine, tenant))["user000000"]["title"] == "Other"


async def test_undo_names_who_took_a_restored_address(engine, tenant):
    await run(engine, tenant, people(3))
    removal = await run(engine, tenant, people(2))  # user000002 leaves
    newcomer = person(9, CSV_EMAIL="user000002@example.com")
    arrival = await run(engine, tenant, [*people(2), newcomer])
    blocked = await jobs.undo(engine, removal.import_id, channel="cli", actor="ops")
    assert blocked.status == "blocked"
    assert [i.code for i in blocked.issues] == ["email_taken"]
    assert "user000009" in blocked.issues[0].message
    assert (await jobs.undo(engine, arrival.import_id, channel="cli", actor="ops")).ok
    assert (await jobs.undo(engine, removal.import_id, channel="cli", actor="ops")).ok
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]


async def test_a_large_import_leaves_the_planner_statistics_of_its_users(engine, tenant):
    """After an import of ANALYZE_AFTER users or more, the query planner knows the users'
    indexes (on SQLite from a sample of each): a username is searched for, not scanned."""
    await run(engine, tenant, people(jobs.ANALYZE_AFTER), mode=Mode.ADD)
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            analyzed = await conn.execute(
                sa.text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'users'")
            )
            assert analyzed.scalar() is not None
            return
        stats = await conn.execute(sa.text("SELECT idx FROM sqlite_stat1 WHERE tbl = 'users'"))
        assert {"ix_users_email_key", "ix_users_tenant_id_display_name_sort_key"} <= set(
            stats.scalars()
        )
        plan = await conn.execute(
            sa.text(
                "EXPLAIN QUERY PLAN SELECT id FROM users WHERE tenant_id = :t AND username_key = :u"
            ),
            {"t": tenant.id.hex, "u": "user000001"},
        )
        steps = " ".join(row[-1] for row in plan)
        assert "SEARCH users USING" in steps and "SCAN" not in steps, steps
