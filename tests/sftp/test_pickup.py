"""Pickups: the drop box's file becomes a replace import, reported beside it, once."""

import asyncio
from datetime import datetime, timedelta

import pytest

from roster import scheduler
from roster.jobs import dropbox_files, notices
from roster.jobs import imports as import_jobs
from roster.jobs import pickup as pickups
from roster.jobs.pickup import pickup
from roster.store import directory_reads, dropboxes, imports
from roster.store.clock import now
from roster.store.db import writing
from roster.store.imports import ImportStatus
from roster.store.schema import dropboxes as dropboxes_table
from tests.factories import csv_bytes, people, person
from tests.jobs.test_notices import add_admin, mails

FILE = "flexwhere - users.csv"


def drop(dropbox, content: bytes, name: str = FILE) -> None:
    (dropbox.folder / name).write_bytes(content)


async def run(dropbox, engine, trigger: str = "cli") -> pickups.Pickup:
    return await pickup(
        engine,
        dropbox.folders,
        dropbox.slug,
        trigger=trigger,
        max_bytes=dropbox.settings.max_import_bytes,
    )


async def usernames(engine, tenant) -> list[str]:
    async with engine.connect() as conn:
        return [u["username"] for u in await directory_reads.list_users(conn, tenant.id)]


def reports(dropbox) -> list[str]:
    folder = dropbox.folders.results(dropbox.slug)
    return [p.read_text() for p in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)]


async def test_a_dropped_file_replaces_the_directory_and_is_reported(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(3)))
    first = await run(dropbox, engine)
    assert first.status == "applied"
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    drop(dropbox, csv_bytes(people(2, start=1)))
    second = await run(dropbox, engine)
    assert second.status == "applied" and second.report and second.report.counts["removed"] == 1
    assert await usernames(engine, tenant) == ["user000001", "user000002"]
    # The file moved to processed/ with its time, a report beside it, the history knows.
    assert not (dropbox.folder / FILE).exists()
    processed = sorted(p.name for p in dropbox.folders.processed(dropbox.slug).iterdir())
    assert len(processed) == 2 and all(" flexwhere - users" in name for name in processed)
    report = reports(dropbox)[-1]
    assert "Result:   APPLIED" in report and "removed 1" in report
    async with engine.connect() as conn:
        history = await imports.history(conn, tenant.id)
    assert [(r.channel, r.mode, r.status) for r in history] == [("sftp", "replace", "applied")] * 2


async def test_an_unchanged_file_is_skipped_and_recorded(dropbox, engine, tenant):
    data = csv_bytes(people(3))
    drop(dropbox, data)
    await run(dropbox, engine)
    drop(dropbox, data)
    again = await run(dropbox, engine)
    assert again.status == "skipped"
    async with engine.connect() as conn:
        latest = (await imports.history(conn, tenant.id))[0]
    assert latest.status == "skipped" and "same as at the last pickup" in str(latest.report)
    assert "SKIPPED" in reports(dropbox)[-1]


async def test_other_files_are_ignored_and_listed(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(1)))
    drop(dropbox, b"hello", "readme.txt")
    drop(dropbox, csv_bytes(people(5)), "users (old).csv")
    result = await run(dropbox, engine)
    assert result.ignored == ["readme.txt", "users (old).csv"]
    assert await usernames(engine, tenant) == ["user000000"]
    assert (dropbox.folder / "readme.txt").exists()
    assert "Ignored" in reports(dropbox)[-1] and "users (old).csv" in reports(dropbox)[-1]
    async with engine.connect() as conn:
        latest = (await imports.history(conn, tenant.id))[0]
    assert latest.report["ignored"] == ["readme.txt", "users (old).csv"]


async def test_invalid_rows_leave_their_users_alone(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(3)))
    await run(dropbox, engine)
    broken = person(1, CSV_EMAIL="not an address")
    drop(dropbox, csv_bytes([person(0, CSV_DEPARTMENT="Finance"), broken, person(2)]))
    result = await run(dropbox, engine)
    assert result.status == "applied"
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    report = reports(dropbox)[-1]
    assert "row 3, CSV_EMAIL" in report
    async with engine.connect() as conn:
        users = {u["username"]: u for u in await directory_reads.list_users(conn, tenant.id)}
    assert users["user000000"]["department"] == "Finance"
    assert users["user000001"]["email"] == "user000001@example.com"


async def test_a_truncated_export_is_held_until_approved(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(40)))
    await run(dropbox, engine)
    drop(dropbox, csv_bytes(people(10)))  # the export stopped a quarter of the way
    held = await run(dropbox, engine)
    assert held.status == "held" and held.import_id
    assert len(await usernames(engine, tenant)) == 40
    report = reports(dropbox)[-1]
    assert "HELD" in report and f"roster sync approve --tenant {dropbox.slug}" in report
    assert "would have: added 0, updated 0, removed 30" in report
    status = await pickups.status(engine, dropbox.slug)
    assert [h.id for h in status.held] == [held.import_id]

    approved = await pickups.approve(
        engine, dropbox.folders, dropbox.slug, held.import_id, actor="cli:admin", max_bytes=10**6
    )
    assert approved.status == "applied" and approved.counts["removed"] == 30
    assert len(await usernames(engine, tenant)) == 10
    async with engine.connect() as conn:
        decided = await imports.find(conn, held.import_id)
        assert decided is not None and decided.status == "approved"
        assert decided.report["decided_by"] == "cli:admin"
        assert decided.report["applied_as"] == str(approved.import_id)
        assert datetime.fromisoformat(decided.report["decided_at"]) > decided.created_at
        assert approved.import_id is not None
        gone = await imports.removed_users(conn, tenant.id, approved.import_id, 1000)
    assert sorted(u["username"] for u in gone) == [f"user{n:06d}" for n in range(10, 40)]
    assert "after an admin's approval" in reports(dropbox)[-1]
    with pytest.raises(pickups.PickupError, match="approved, not held"):
        await pickups.approve(
            engine, dropbox.folders, dropbox.slug, held.import_id, actor="x", max_bytes=10**6
        )


async def test_a_newer_file_discards_the_held_one(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(40)))
    await run(dropbox, engine)
    drop(dropbox, csv_bytes(people(10)))
    held = await run(dropbox, engine)
    drop(dropbox, csv_bytes(people(41)))  # the next night's export is whole again
    assert (await run(dropbox, engine)).status == "applied"
    async with engine.connect() as conn:
        discarded = await imports.find(conn, held.import_id)  # type: ignore[arg-type]
    assert discarded is not None and discarded.status == "discarded"
    assert discarded.report["decided_by"] == "sftp pickup (cli)"
    assert discarded.report["decided_why"] == "a newer file arrived"
    assert len(await usernames(engine, tenant)) == 41
    assert not dropbox.folders.held(held.import_id).exists()  # type: ignore[arg-type]


async def test_a_held_pickup_can_be_discarded_by_an_admin(dropbox, engine):
    drop(dropbox, csv_bytes(people(40)))
    await run(dropbox, engine)
    drop(dropbox, csv_bytes(people(10)))
    held = await run(dropbox, engine)
    assert held.import_id
    await pickups.discard(engine, dropbox.folders, dropbox.slug, held.import_id, actor="fm@x")
    assert (await pickups.status(engine, dropbox.slug)).held == []
    async with engine.connect() as conn:
        discarded = await imports.find(conn, held.import_id)
    assert discarded is not None and discarded.status == "discarded"
    assert (discarded.report["decided_by"], discarded.report["decided_why"]) == ("fm@x", None)


async def test_another_organization_cannot_approve_ones_pickup(dropbox, engine, tenant):
    from roster.store import tenants

    drop(dropbox, csv_bytes(people(40)))
    await run(dropbox, engine)
    drop(dropbox, csv_bytes(people(10)))
    held = await run(dropbox, engine)
    async with writing(engine) as conn:
        other = await tenants.create(conn, f"{tenant.slug}-x", "Other")
    with pytest.raises(pickups.PickupError, match="has no SFTP pickup"):
        await pickups.approve(
            engine, dropbox.folders, other.slug, held.import_id, actor="x", max_bytes=10**6
        )  # type: ignore[arg-type]


async def test_nothing_to_pick_up(dropbox, engine):
    assert (await run(dropbox, engine)).status == "no_file"


async def test_an_unreadable_file_is_rejected_and_reported(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(3)))
    await run(dropbox, engine)
    drop(dropbox, "CSV_USERNAME;CSV_EMAIL\r\nJörg;j@example.com\r\n".encode("cp1252"))
    result = await run(dropbox, engine)
    assert result.status == "rejected"
    assert len(await usernames(engine, tenant)) == 3
    assert "REJECTED" in reports(dropbox)[-1]


async def test_a_pickup_interrupted_after_its_claim_is_finished_next_time(dropbox, engine, tenant):
    claimed = dropbox.folders.claimed(dropbox.slug)
    (claimed / FILE).write_bytes(csv_bytes(people(2)))  # taken, then the process died
    drop(dropbox, csv_bytes(people(5)))  # and a newer upload arrived meanwhile
    first = await run(dropbox, engine)
    assert first.status == "applied" and len(await usernames(engine, tenant)) == 2
    second = await run(dropbox, engine)
    assert second.status == "applied" and len(await usernames(engine, tenant)) == 5


class Died(Exception):
    """The process ended here."""


def _dies(*args: object, **kwargs: object) -> None:
    raise Died


async def test_a_pickup_stopped_after_its_import_committed_is_filed_not_imported_again(
    dropbox, engine, tenant, monkeypatch
):
    drop(dropbox, csv_bytes(people(3)))
    with monkeypatch.context() as dying:
        dying.setattr(pickups, "write_report", _dies)  # the first step after the commit
        with pytest.raises(Died):
            await run(dropbox, engine)
    async with engine.connect() as conn:
        [recorded] = await imports.history(conn, tenant.id)
    assert len(list(dropbox.folders.claimed(dropbox.slug).iterdir())) == 1
    assert reports(dropbox) == []

    again = await run(dropbox, engine)  # the restarted server's next pickup
    assert (again.status, again.import_id) == ("applied", recorded.id)
    async with engine.connect() as conn:
        assert [r.id for r in await imports.history(conn, tenant.id)] == [recorded.id]
        box = await dropboxes.get(conn, tenant.id)
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    [report] = reports(dropbox)
    assert "Result:   APPLIED" in report and f"Import:   {recorded.id}" in report
    assert "added 3, updated 0, removed 0" in report
    assert len(list(dropbox.folders.processed(dropbox.slug).iterdir())) == 1
    assert list(dropbox.folders.claimed(dropbox.slug).iterdir()) == []
    assert box.last_import_id == recorded.id
    drop(dropbox, csv_bytes(people(3)))  # and the drop box knows the file it imported
    assert (await run(dropbox, engine)).status == "skipped"


async def test_a_held_pickup_stopped_after_its_commit_keeps_its_file_for_approval(
    dropbox, engine, tenant, monkeypatch
):
    drop(dropbox, csv_bytes(people(40)))
    await run(dropbox, engine)
    drop(dropbox, csv_bytes(people(10)))
    with monkeypatch.context() as dying:
        dying.setattr(pickups, "private_copy", _dies)  # the first step after the commit
        with pytest.raises(Died):
            await run(dropbox, engine)
    again = await run(dropbox, engine)
    assert again.status == "held" and again.import_id
    assert "HELD" in reports(dropbox)[-1]
    approved = await pickups.approve(
        engine, dropbox.folders, dropbox.slug, again.import_id, actor="x", max_bytes=10**6
    )
    assert approved.status == "applied" and len(await usernames(engine, tenant)) == 10
    async with engine.connect() as conn:
        statuses = [r.status for r in await imports.history(conn, tenant.id)]
    assert statuses == ["applied", "approved", "applied"]


async def test_the_same_export_after_an_undo_is_imported_again(dropbox, engine, tenant):
    data = csv_bytes(people(3))
    drop(dropbox, data)
    first = await run(dropbox, engine)
    assert first.import_id
    await import_jobs.undo(engine, first.import_id, channel="cli", actor="ops")
    assert await usernames(engine, tenant) == []
    drop(dropbox, data)
    again = await run(dropbox, engine)
    assert again.status == "applied" and again.report and again.report.counts["added"] == 3
    assert await usernames(engine, tenant) == ["user000000", "user000001", "user000002"]
    drop(dropbox, data)
    assert (await run(dropbox, engine)).status == "skipped"


async def test_two_pickups_at_once_run_one(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(50)))
    results = await asyncio.gather(run(dropbox, engine), run(dropbox, engine))
    assert sorted(r.status for r in results) in (["applied", "busy"], ["applied", "no_file"])
    async with engine.connect() as conn:
        assert len(await imports.history(conn, tenant.id)) == 1


async def _set(engine, tenant, **values) -> None:
    async with writing(engine) as conn:
        await conn.execute(
            dropboxes_table.update()
            .where(dropboxes_table.c.tenant_id == tenant.id)
            .values(**values)
        )


async def test_the_scheduler_runs_what_is_due_and_moves_the_daily_run_on(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(2)))
    assert dropbox.slug not in await scheduler.run_due_pickups(engine, dropbox.settings)
    assert (dropbox.folder / FILE).exists()  # not due: left alone
    await _set(engine, tenant, next_daily_at=now() - timedelta(minutes=1))
    assert dropbox.slug in await scheduler.run_due_pickups(engine, dropbox.settings)
    assert len(await usernames(engine, tenant)) == 2
    async with engine.connect() as conn:
        box = await dropboxes.get(conn, tenant.id)
    assert now() < box.next_daily_at <= now() + timedelta(hours=24)
    assert box.next_daily_at.strftime("%H:%M") == "02:00"  # the organization is on UTC
    assert box.last_pickup_at is not None
    async with engine.connect() as conn:
        assert (await imports.history(conn, tenant.id))[0].actor == "sftp pickup (daily)"


async def test_the_report_lists_the_first_problems_and_how_many_in_all(dropbox, engine, tenant):
    drop(dropbox, csv_bytes([person(n, CSV_EMAIL="same@example.com") for n in range(40)]))
    await _set(engine, tenant, next_daily_at=now() - timedelta(minutes=1))
    settings = dropbox.settings.model_copy(update={"max_reported_problems": 5})
    assert dropbox.slug in await scheduler.run_due_pickups(engine, settings)
    report = reports(dropbox)[-1]
    assert "Only the first 5 of 40 problems are listed" in report
    assert report.count("[duplicate_email]") == 5
    assert "row 2, CSV_EMAIL: CSV_EMAIL is the same as on row 3: 40 rows share" in report
    async with engine.connect() as conn:
        (record,) = await imports.history(conn, tenant.id)
    assert (record.error_count, len(record.problems.errors)) == (40, 5)


async def test_an_upload_asks_for_a_pickup_only_where_turned_on(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(2)))
    async with writing(engine) as conn:
        await dropboxes.uploaded(conn, tenant.id, 0)
    assert dropbox.slug not in await scheduler.run_due_pickups(engine, dropbox.settings)
    async with writing(engine) as conn:
        await dropboxes.configure(conn, tenant.id, process_on_upload=True)
        await dropboxes.uploaded(conn, tenant.id, 0)
    assert dropbox.slug in await scheduler.run_due_pickups(engine, dropbox.settings)
    async with engine.connect() as conn:
        box = await dropboxes.get(conn, tenant.id)
    assert box.upload_pickup_at is None and len(await usernames(engine, tenant)) == 2


async def test_status_warns_when_the_export_stops_arriving(dropbox, engine, tenant):
    await _set(engine, tenant, last_upload_at=now() - timedelta(hours=12))
    assert (await pickups.status(engine, dropbox.slug)).warnings == []
    await _set(engine, tenant, last_upload_at=now() - timedelta(hours=50))
    warnings = (await pickups.status(engine, dropbox.slug)).warnings
    assert len(warnings) == 1 and "for 50 hours" in warnings[0]
    await _set(engine, tenant, last_upload_at=None, created_at=now() - timedelta(days=3))
    assert (
        "since the drop box was enabled" in (await pickups.status(engine, dropbox.slug)).warnings[0]
    )


async def test_old_reports_and_processed_files_are_pruned(dropbox, engine):
    import os
    import time

    drop(dropbox, csv_bytes(people(2)))
    await run(dropbox, engine)
    old = next(dropbox.folders.results(dropbox.slug).iterdir())
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    assert dropbox_files.prune(dropbox.folders, dropbox.slug, 30) == 1
    assert not old.exists()
    assert len(list(dropbox.folders.processed(dropbox.slug).iterdir())) == 1


async def _upload(dropbox, content: bytes, tmp_path) -> None:
    source = tmp_path / "export.csv"
    source.write_bytes(content)
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        await client.put(str(source), FILE)


async def _due_soon(engine, tenant) -> None:
    for _ in range(50):  # the server records the upload just after the client's close
        async with engine.connect() as conn:
            if (await dropboxes.get(conn, tenant.id)).upload_pickup_at is not None:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the upload did not ask for a pickup")


async def test_upload_pickup_directory_end_to_end(dropbox, engine, tenant, tmp_path):
    async with writing(engine) as conn:
        await dropboxes.configure(conn, tenant.id, process_on_upload=True)
    await _upload(dropbox, csv_bytes(people(30)), tmp_path)
    await _due_soon(engine, tenant)
    assert dropbox.slug in await scheduler.run_due_pickups(engine, dropbox.settings)
    assert len(await usernames(engine, tenant)) == 30
    # The next export stops after five rows, at a line's end: held, and nobody is removed.
    await _upload(dropbox, b"".join(csv_bytes(people(30)).splitlines(keepends=True)[:6]), tmp_path)
    await _due_soon(engine, tenant)
    assert dropbox.slug in await scheduler.run_due_pickups(engine, dropbox.settings)
    assert len(await usernames(engine, tenant)) == 30
    seen = []  # what the uploader reads in results/
    async with dropbox.connect() as conn, conn.start_sftp_client() as client:
        for name in await client.listdir("results"):
            if name.endswith(".txt"):
                async with client.open(f"results/{name}", "rb") as handle:
                    seen.append((await handle.read()).decode())
    [held] = [report for report in seen if "Result:   HELD" in report]
    assert "would have: added 0, updated 0, removed 25" in held


async def test_a_pickup_that_meets_a_busy_directory_is_one_log_line_and_waits(
    dropbox, engine, tenant, monkeypatch, caplog
):
    from roster.store.db import Unavailable

    async def busy(*args, **options):
        raise Unavailable("the database is unavailable (waiting for the write lock)")

    drop(dropbox, csv_bytes(people(2)))
    await _set(engine, tenant, next_daily_at=now() - timedelta(minutes=1))
    monkeypatch.setattr(scheduler, "pickup", busy)
    assert dropbox.slug not in await scheduler.run_due_pickups(engine, dropbox.settings)
    said = [r for r in caplog.records if "did not run" in r.getMessage()]
    assert said and all(r.exc_info is None for r in caplog.records)
    assert (dropbox.folder / FILE).exists()  # left for the next tick


async def test_admins_are_told_of_a_held_and_of_a_rejected_pickup(dropbox, engine, tenant):
    drop(dropbox, csv_bytes(people(40)))
    await run(dropbox, engine)
    admin = await add_admin(engine, tenant, 900)  # after the first replace, which would remove them
    drop(dropbox, csv_bytes(people(10)))
    held = await run(dropbox, engine)
    await notices.sweep(engine, dropbox.settings)
    (told,) = mails(dropbox.settings, tenant)
    assert told["to"] == admin
    assert told["subject"] == f"{tenant.name}: the SFTP pickup is held for your approval"
    assert "the daily sync stops" in told["body"] and "remove 30 of 41 users" in told["body"]
    assert f"{dropbox.settings.console_url}/integrations#pickups\n" in told["body"]

    drop(dropbox, b"not;a;template\r\n1;2;3\r\n")
    rejected = await run(dropbox, engine)
    assert rejected.status == "rejected" and rejected.import_id != held.import_id
    await notices.sweep(engine, dropbox.settings)
    told = mails(dropbox.settings, tenant)[-1]
    assert told["subject"] == f"{tenant.name}: the SFTP pickup was rejected"
    assert "The first problem: " in told["body"]
    assert f"/imports/{rejected.import_id}\n" in told["body"]
    await notices.sweep(engine, dropbox.settings)
    assert len(mails(dropbox.settings, tenant)) == 2


async def test_a_mail_server_that_never_answers_holds_no_pickup_back(
    dropbox, engine, tenant, monkeypatch
):
    stuck = asyncio.Event()

    async def sweep_forever(*args: object) -> int:
        await stuck.wait()  # as a send to an SMTP server that never answers
        return 0

    monkeypatch.setattr(scheduler.notices, "sweep", sweep_forever)
    settings = dropbox.settings.model_copy(update={"scheduler_tick_seconds": 0.05})
    clock = asyncio.create_task(scheduler.run(engine, settings))
    try:
        await asyncio.sleep(0.3)  # the notices are being sent, and never will be
        drop(dropbox, csv_bytes(people(3)))
        await _set(engine, tenant, next_daily_at=now() - timedelta(minutes=1))
        for _ in range(200):
            if len(await usernames(engine, tenant)) == 3:
                break
            await asyncio.sleep(0.05)
        assert len(await usernames(engine, tenant)) == 3
    finally:
        clock.cancel()
        await asyncio.gather(clock, return_exceptions=True)


async def test_a_discard_while_an_approval_runs_is_refused(dropbox, engine, tenant, monkeypatch):
    drop(dropbox, csv_bytes(people(40)))
    await run(dropbox, engine)
    drop(dropbox, csv_bytes(people(10)))
    held = await run(dropbox, engine)
    assert held.import_id
    real = pickups.run_import
    refused: list[str] = []

    async def discarded_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            await pickups.discard(
                engine, dropbox.folders, dropbox.slug, held.import_id, actor="b@x"
            )
        except pickups.PickupError as error:
            refused.append(str(error))
        return await real(*args, **kwargs)

    monkeypatch.setattr(pickups, "run_import", discarded_meanwhile)
    approved = await pickups.approve(
        engine, dropbox.folders, dropbox.slug, held.import_id, actor="a@x", max_bytes=10**6
    )
    assert approved.status == "applied" and refused == [
        "a pickup for this organization is running; try again shortly"
    ]
    async with engine.connect() as conn:
        decided = await imports.find(conn, held.import_id)
        assert decided is not None and decided.status == "approved"
        assert decided.report["decided_by"] == "a@x"
        # A decision never overwrites another.
        assert not await imports.decide(conn, decided, ImportStatus.DISCARDED, by="b@x")
