"""Work that runs by the clock inside `roster serve`: due pickups (daily, or after an upload),
the notices mailed to admins about what waits for them, and the housekeeping of removed users
and old drop-box files.

Due times live in the database, not in this process, so a restart catches up on what it
missed and replicas agree on what is due; each pickup runs under a lock that only one
process can hold (roster.store.db.exclusive)."""

import asyncio
import logging
import time
from collections.abc import Awaitable

from sqlalchemy.ext.asyncio import AsyncEngine

from roster.jobs import notices
from roster.jobs.dropbox_files import Folders, prune
from roster.jobs.pickup import NoPickup, pickup
from roster.settings import Settings
from roster.store import directory, dropboxes, provisioning_log, sessions, sso, tenants
from roster.store.clock import now
from roster.store.db import Unavailable, exclusive, writing
from roster.store.directory import ConcurrentChange

log = logging.getLogger("roster.scheduler")
HOUSEKEEPING_SECONDS = 3600
NOTICE_SECONDS = 60  # how often new events are looked for (jobs/notices)


async def run_due_pickups(engine: AsyncEngine, settings: Settings) -> list[str]:
    """Pick up every drop box that is due now; returns the organizations whose pickup ran."""
    folders = Folders.of(settings)
    async with engine.connect() as conn:
        due = [box for box in await dropboxes.all_enabled(conn) if box.due(now())]
    ran = []
    for box in due:
        try:
            result = await pickup(
                engine,
                folders,
                box.slug,
                trigger=_trigger(box),
                max_bytes=settings.max_import_bytes,
                max_problems=settings.max_reported_problems,
            )
        except (Unavailable, ConcurrentChange) as error:  # the next tick tries again
            log.warning("pickup for %s did not run: %s", box.slug, error)
            continue
        except Exception:  # one organization's failure must not stop the others' pickups
            log.exception("pickup for %s failed", box.slug)
            continue
        if result.status not in (NoPickup.BUSY, NoPickup.NOT_DUE):
            ran.append(box.slug)
    return ran


def _trigger(box: dropboxes.Dropbox) -> str:
    return "daily" if box.next_daily_at <= now() else "upload"


async def housekeeping(engine: AsyncEngine, settings: Settings) -> None:
    """Purge removed users past retention and drop-box files older than it, once among
    replicas."""
    folders = Folders.of(settings)
    async with exclusive(engine, "housekeeping") as mine:
        if not mine:
            return
        async with writing(engine) as conn:
            purged = await directory.purge_removed(conn)
            await sessions.forget_spent(conn)
            await sso.forget_expired(conn)  # sign-ins abandoned at the provider, codes unused
        logged = await purge_provisioning_log(engine)
        await notices.forget_old(engine)
        async with engine.connect() as conn:
            found = {t.id: t for t in await tenants.all_tenants(conn)}
            boxes = await dropboxes.all_enabled(conn)
        pruned = sum(prune(folders, b.slug, found[b.tenant_id].retention_days) for b in boxes)
        if purged or pruned or logged:
            log.info(
                "housekeeping: purged %d removed users, %d old drop-box files, "
                "%d provisioning log rows", purged, pruned, logged,
            )  # fmt: skip


async def purge_provisioning_log(engine: AsyncEngine) -> int:
    """Delete provisioning log rows past their organization's retention, a batch per
    transaction; how many."""
    deleted = 0
    while True:
        async with writing(engine) as conn:
            gone = await provisioning_log.purge(conn, now())
        deleted += gone
        if not gone:
            return deleted


async def run(engine: AsyncEngine, settings: Settings) -> None:
    """Tick until cancelled: pickups and housekeeping by one clock, notices by their own (a
    mail server that is slow to answer must not hold a pickup back)."""
    telling = asyncio.create_task(_tell(engine, settings))
    try:
        last_housekeeping = 0.0
        while True:
            await _guarded("pickups", run_due_pickups(engine, settings))
            if time.monotonic() - last_housekeeping >= HOUSEKEEPING_SECONDS and await _guarded(
                "housekeeping", housekeeping(engine, settings)
            ):
                last_housekeeping = time.monotonic()
            await asyncio.sleep(settings.scheduler_tick_seconds)
    finally:
        telling.cancel()


async def _tell(engine: AsyncEngine, settings: Settings) -> None:
    while True:
        await _guarded("notices", notices.sweep(engine, settings))
        await asyncio.sleep(NOTICE_SECONDS)


async def _guarded(work: str, done: Awaitable[object]) -> bool:
    """Whether the work ran; a failure is logged, and the next tick tries again."""
    try:
        await done
    except Unavailable as error:  # the database is briefly away
        log.warning("scheduled %s did not run: %s", work, error)
        return False
    except Exception:
        log.exception("scheduled %s failed", work)
        return False
    return True
