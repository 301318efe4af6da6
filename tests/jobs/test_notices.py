"""Admins are mailed, once per event, about what waits for them: a held pickup or import, a
rejected pickup, a silent drop box, SCIM refusals beyond the hour's limit; each kind can be
turned off per organization."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import sqlalchemy as sa

from roster import mail
from roster.domain.fields import FIELDS
from roster.domain.mode import Mode
from roster.domain.passwords import hash_password
from roster.jobs import notices, people
from roster.jobs.imports import run_import
from roster.settings import Settings
from roster.store import admins, dropboxes, imports, provisioning_log, tenants
from roster.store.db import writing
from roster.store.imports import ImportStatus
from roster.store.schema import dropboxes as dropboxes_table
from roster.store.schema import imports as imports_table
from roster.store.schema import notices as notices_table
from tests.factories import csv_bytes, person
from tests.factories import people as rows

BY = {"channel": "cli", "actor": "test"}
HASH = hash_password("correct horse battery staple")


async def add_admin(engine, tenant, n: int, active: bool = True) -> str:
    row = person(n, CSV_EMAIL=f"admin{n}@{tenant.slug}.example")
    raw = {f.name: row[f.column] for f in FIELDS}
    outcome = await people.add(engine, tenant.id, raw, role="admin", **BY)
    assert outcome.ok and outcome.user_id, outcome.issues
    async with writing(engine) as conn:
        await admins.set_password(conn, tenant.id, outcome.user_id, HASH)
    if not active:
        change = await people.change(engine, tenant.id, outcome.user_id, {"active": False}, **BY)
        assert change.ok, change.issues
    return raw["email"]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "var", public_url="https://roster.example.com/")


def mails(settings: Settings, tenant) -> list[dict[str, str]]:
    """The mails this organization's admins got (the sweep serves every organization)."""
    return [m for m in mail.outbox(settings) if m["to"].endswith(f"@{tenant.slug}.example")]


async def held_import(engine, tenant) -> str:
    """A replace the deletion guard holds (run before the admins are added: the first replace
    would remove them)."""
    await run_import(engine, tenant.slug, csv_bytes(rows(20)), mode=Mode.REPLACE, channel="cli",
                     actor="cli:ops", file_name="ad.csv")  # fmt: skip
    held = await run_import(engine, tenant.slug, csv_bytes(rows(2)), mode=Mode.REPLACE,
                            channel="cli", actor="cli:ops", file_name="ad.csv")  # fmt: skip
    assert held.status == "held" and held.import_id
    return str(held.import_id)


async def test_a_held_import_is_told_once_to_each_admin_who_can_sign_in(engine, tenant, settings):
    import_id = await held_import(engine, tenant)
    first = await add_admin(engine, tenant, 900)
    second = await add_admin(engine, tenant, 901)
    await add_admin(engine, tenant, 902, active=False)
    await notices.sweep(engine, settings)
    got = mails(settings, tenant)
    assert sorted(m["to"] for m in got) == sorted([first, second])
    for sent in got:
        assert sent["subject"] == f"{tenant.name}: an import was held by the deletion guard"
        assert "would remove" in sent["body"] and "cli:ops" in sent["body"]
        assert "Nothing was changed" in sent["body"] and "--force" in sent["body"]
        assert f"https://roster.example.com/imports/{import_id}\n" in sent["body"]
        assert "https://roster.example.com/settings#notices" in sent["body"]
    await notices.sweep(engine, settings)  # the same event: told once
    assert len(mails(settings, tenant)) == 2


async def test_a_kind_turned_off_is_not_told_and_is_once_turned_on(engine, tenant, settings):
    await held_import(engine, tenant)
    admin = await add_admin(engine, tenant, 900)
    async with writing(engine) as conn:
        await tenants.configure(conn, tenant.id, notices_off=["held"])
    await notices.sweep(engine, settings)
    assert mails(settings, tenant) == []
    async with writing(engine) as conn:
        await tenants.configure(conn, tenant.id, notices_off=[])
    await notices.sweep(engine, settings)  # still held: its admins hear of it now
    assert [m["to"] for m in mails(settings, tenant)] == [admin]


async def test_a_silent_drop_box_is_told_once_per_silence(engine, tenant, settings):
    await add_admin(engine, tenant, 900)
    async with writing(engine) as conn:
        await dropboxes.enable(conn, tenant.id, tenant.timezone)
    await notices.sweep(engine, settings)
    assert mails(settings, tenant) == []  # just made: no file is late yet

    async def last_upload(at: datetime) -> None:
        async with writing(engine) as conn:
            await conn.execute(
                sa.update(dropboxes_table)
                .where(dropboxes_table.c.tenant_id == tenant.id)
                .values(last_upload_at=at)
            )

    await last_upload(datetime.now(UTC) - timedelta(hours=49))
    await notices.sweep(engine, settings)
    await notices.sweep(engine, settings)
    (told,) = mails(settings, tenant)
    assert told["subject"] == f"{tenant.name}: no new SFTP file for 48 hours"
    assert "https://roster.example.com/integrations#dropbox" in told["body"]
    await last_upload(datetime.now(UTC) - timedelta(hours=1))  # a file came
    await notices.sweep(engine, settings)
    await last_upload(datetime.now(UTC) - timedelta(hours=50))  # then none for two days
    await notices.sweep(engine, settings)
    assert len(mails(settings, tenant)) == 2


async def test_scim_refusals_are_told_from_the_hours_limit(engine, tenant, settings):
    await add_admin(engine, tenant, 900)
    settings = settings.model_copy(update={"notice_scim_refusals_per_hour": 5})
    at = datetime.now(UTC)

    async def log(count: int, status: int, ago: timedelta) -> None:
        row = {
            "tenant_id": tenant.id, "at": at - ago, "token": "entra-id", "method": "POST",
            "path": "/scim/v2/Users", "status": status, "resource_id": None, "user_name": None,
            "detail": "refused", "warnings": "", "duration_ms": 1.0,
        }  # fmt: skip
        async with writing(engine) as conn:
            await provisioning_log.record(conn, [row] * count)

    await log(4, 409, timedelta(minutes=5))
    await log(10, 201, timedelta(minutes=5))  # answered: not refusals
    await log(10, 400, timedelta(hours=2))  # another hour
    await notices.sweep(engine, settings)
    assert mails(settings, tenant) == []
    await log(1, 503, timedelta(minutes=1))
    await notices.sweep(engine, settings)
    await notices.sweep(engine, settings)
    (told,) = mails(settings, tenant)
    assert told["subject"] == f"{tenant.name}: Roster refused 5 SCIM requests in the last hour"
    assert "https://roster.example.com/integrations/scim-log?status=4xx" in told["body"]


async def shift(engine, tenant, table, column, by: timedelta) -> None:
    """Date this organization's rows of a table back, to `by` ago."""
    async with writing(engine) as conn:
        await conn.execute(
            sa.update(table)
            .where(table.c.tenant_id == tenant.id)
            .values({column: datetime.now(UTC) - by})
        )


async def test_what_is_past_is_not_told_and_nothing_is_told_twice(engine, tenant, settings):
    await held_import(engine, tenant)  # refused by the guard two days ago: past
    await shift(engine, tenant, imports_table, "created_at", timedelta(days=2))
    await add_admin(engine, tenant, 900)
    await notices.sweep(engine, settings)
    assert mails(settings, tenant) == []

    # A held pickup waits for an admin: told once, and not again when its notice is forgotten.
    async with writing(engine) as conn:
        await imports.record(
            conn, import_id=uuid4(), tenant_id=tenant.id, channel="sftp",
            actor="sftp pickup (daily)", file_name="ad.csv", mode="replace",
            status=ImportStatus.HELD, counts={}, report={"held_reason": "too many"},
        )  # fmt: skip
    await notices.sweep(engine, settings)
    (told,) = mails(settings, tenant)
    assert told["subject"] == f"{tenant.name}: the SFTP pickup is held for your approval"
    await shift(engine, tenant, imports_table, "created_at", timedelta(days=31))
    await shift(engine, tenant, notices_table, "sent_at", timedelta(days=31))
    await notices.forget_old(engine)
    await notices.sweep(engine, settings)
    assert len(mails(settings, tenant)) == 1
