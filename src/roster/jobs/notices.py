"""Mail an organization's admins about what waits for them: a held pickup or import (a held
pickup stops the daily sync, so leavers keep their access until someone decides), a rejected
pickup, a drop box no file reached for 48 hours, and SCIM refusals beyond a rate within an hour.

`sweep` finds the events in the database, so it sees those of every process (a CLI import, a
replica's pickup) and a restart misses none; it runs in `roster serve`'s scheduler, in one
process of all replicas at a time. Each event is told once (`store/notices`), through the mail
path of the app's sign-in codes (SMTP, or the outbox), to each admin who can sign in, with a
link to the page that acts on it."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from roster import mail
from roster.domain.notices import HELD, REJECTED, SCIM_REFUSALS, STALE
from roster.jobs.pickup import CHANNEL as SFTP
from roster.jobs.pickup import STALE_AFTER
from roster.settings import Settings
from roster.store import admins, dropboxes, imports, notices, provisioning_log, tenants
from roster.store.clock import now
from roster.store.db import exclusive, writing
from roster.store.imports import ImportStatus

log = logging.getLogger("roster.notices")
RECENT = timedelta(days=1)  # rejected pickups older than this are not told (a restart's catch-up)
HOUR = timedelta(hours=1)
PER_SWEEP = 100  # notices sent by one sweep at most
KEPT = timedelta(days=30)  # a drop box still silent after this is told again


@dataclass(frozen=True)
class Notice:
    tenant: tenants.Tenant
    kind: str
    key: str  # the event: told once
    subject: str
    text: str  # what happened and why it matters
    path: str  # the Control Centre's page that acts on it

    @property
    def event(self) -> notices.Event:
        return self.tenant.id, self.kind, self.key


async def sweep(engine: AsyncEngine, settings: Settings) -> int:
    """Tell each organization's admins of every new event; how many notices were sent."""
    async with exclusive(engine, "notices") as mine:
        if not mine:
            return 0
        found = await _events(engine, settings)
        async with engine.connect() as conn:
            told = await notices.told(conn, (n.event for n in found))
        sent = 0
        for notice in found:
            if notice.event not in told and notice.kind not in notice.tenant.notices_off:
                await _send(engine, settings, notice)
                sent += 1
                if sent == PER_SWEEP:  # the rest next time: a sweep's work stays bounded
                    break
        return sent


async def forget_old(engine: AsyncEngine) -> int:
    async with writing(engine) as conn:
        return await notices.forget(conn, now() - KEPT)


async def _events(engine: AsyncEngine, settings: Settings) -> list[Notice]:
    at = now()
    found: list[Notice] = []
    async with engine.connect() as conn:
        orgs = {t.id: t for t in await tenants.all_tenants(conn)}
        # A held pickup waits for an admin; told while it is younger than a notice is kept, so
        # it is told once however long it waits.
        for record in await imports.waiting(conn, SFTP, at - KEPT):
            found.append(_held_pickup(orgs[record.tenant_id], record))
        for org in orgs.values():
            for record in await imports.since(conn, org.id, at - RECENT, ImportStatus.HELD):
                if record.channel != SFTP:  # refused by the guard: run again to apply
                    found.append(_held_import(org, record))
        for box in await dropboxes.all_enabled(conn):
            org = orgs[box.tenant_id]
            rejected = await imports.since(conn, org.id, at - RECENT, ImportStatus.REJECTED)
            found.extend(_rejected(org, r) for r in rejected if r.channel == SFTP)
            if at - box.last_arrival > STALE_AFTER:
                found.append(_stale(org, box))
        limit = settings.notice_scim_refusals_per_hour
        for org in orgs.values():
            if SCIM_REFUSALS in org.notices_off:
                continue
            refused = await provisioning_log.refusals(conn, org.id, at - HOUR)
            if refused >= limit:
                found.append(_refusals(org, refused, limit, at.strftime("%Y-%m-%dT%H")))
    return found


def _reason(record: imports.ImportRecord) -> str:
    return str(record.report.get("held_reason") or "it would remove too many users")


def _held_pickup(org: tenants.Tenant, record: imports.ImportRecord) -> Notice:
    return Notice(
        org, HELD, str(record.id),
        f"{org.name}: the SFTP pickup is held for your approval",
        f"The deletion guard held the SFTP pickup of {record.file_name or 'the file'}: "
        f"{_reason(record)}. Until an admin approves or discards it, the daily sync stops, so "
        "people who left keep their access.",
        "/integrations#pickups",
    )  # fmt: skip


def _held_import(org: tenants.Tenant, record: imports.ImportRecord) -> Notice:
    return Notice(
        org, HELD, str(record.id),
        f"{org.name}: an import was held by the deletion guard",
        f"The deletion guard held an import ({record.channel}, by {record.actor}, "
        f"{record.file_name or 'no file name'}): {_reason(record)}. Nothing was changed; to "
        "apply it, confirm the removals in the Control Centre's preview of the file, or run "
        "the command again with --force.",
        f"/imports/{record.id}",
    )  # fmt: skip


def _rejected(org: tenants.Tenant, record: imports.ImportRecord) -> Notice:
    errors = record.problems.errors
    first = f" The first problem: {errors[0]}." if errors else ""
    return Notice(
        org, REJECTED, str(record.id),
        f"{org.name}: the SFTP pickup was rejected",
        f"Roster could not use the SFTP pickup of {record.file_name or 'the file'}, so the "
        f"directory did not change.{first}",
        f"/imports/{record.id}",
    )  # fmt: skip


def _stale(org: tenants.Tenant, box: dropboxes.Dropbox) -> Notice:
    since = box.last_arrival
    return Notice(
        org, STALE, since.isoformat(),
        f"{org.name}: no new SFTP file for 48 hours",
        f"No new file has reached the SFTP drop box since {since:%Y-%m-%d %H:%M} UTC, so "
        "the directory has not followed the Active Directory since: check the export that "
        "uploads it.",
        "/integrations#dropbox",
    )  # fmt: skip


def _refusals(org: tenants.Tenant, refused: int, limit: int, hour: str) -> Notice:
    return Notice(
        org, SCIM_REFUSALS, hour,
        f"{org.name}: Roster refused {refused} SCIM requests in the last hour",
        f"Roster refused {refused} requests of your identity provider within the last hour "
        f"(you are told from {limit}): the people they concern may not be provisioned or "
        "deprovisioned. The provisioning log says what each request asked and why it failed.",
        "/integrations/scim-log?status=4xx",
    )  # fmt: skip


def _body(settings: Settings, notice: Notice) -> str:
    return (
        f"{notice.text}\n\n{settings.console_url}{notice.path}\n\n"
        f"You receive this as an admin of {notice.tenant.name} in Roster. Each kind of notice "
        f"can be turned off under Settings: {settings.console_url}/settings#notices\n"
    )


async def _send(engine: AsyncEngine, settings: Settings, notice: Notice) -> None:
    """Recorded first: a mail that fails is logged, never sent twice."""
    async with writing(engine) as conn:
        to = await admins.addresses(conn, notice.tenant.id)
        await notices.record(conn, notice.event, len(to))
    body = _body(settings, notice)
    for address in to:
        try:
            await mail.send(settings, mail.Message(address, notice.subject, body))
        except Exception as error:  # one admin's server must not keep the others uninformed
            log.warning("notice %s of %s to %s not sent: %s", notice.kind, notice.tenant.slug,
                        address, error)  # fmt: skip
    log.info("notice %s of %s sent to %d admins", notice.kind, notice.tenant.slug, len(to))
