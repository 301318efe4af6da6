"""Uploads being applied: an asyncio task each, in this server process, with its progress.

The registry is in memory on purpose: progress is only interesting while the task runs, and the
outcome is in the import history as soon as it finishes. (With several replicas, the progress
page of an upload is served by the replica that runs it: put the console behind sticky sessions,
or the page says that no upload is running and the result appears in the history.)"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from fastapi import Request

from roster.jobs.imports import ImportReport, Progress
from roster.store.db import Unavailable
from roster.store.directory import ConcurrentChange

log = logging.getLogger("roster.console")
KEEP_SECONDS = 3600  # a finished run answers its progress page this long
# How much of the bar each phase fills: applying is most of the work of a large import.
_PHASES = {"starting": (0, 0), "reading": (0, 10), "planning": (10, 20), "applying": (20, 100)}


@dataclass
class Run:
    upload_id: str
    tenant_id: UUID
    admin_id: UUID
    phase: str = "starting"
    done: int = 0
    total: int = 1
    report: ImportReport | None = None
    failed: str | None = None
    finished_at: float | None = None
    task: "asyncio.Task[None] | None" = field(default=None, repr=False)

    def progress(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, max(total, 1)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def percent(self) -> int:
        if self.finished:
            return 100
        low, high = _PHASES.get(self.phase, (0, 100))
        return low + (high - low) * min(self.done, self.total) // self.total


class Runs:
    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}

    def get(self, upload_id: str, tenant_id: UUID, admin_id: UUID) -> Run | None:
        run = self._runs.get(upload_id)
        if run is None or run.tenant_id != tenant_id or run.admin_id != admin_id:
            return None
        return run

    def start(
        self,
        upload_id: str,
        tenant_id: UUID,
        admin_id: UUID,
        work: Callable[[Progress], Awaitable[ImportReport]],
    ) -> Run:
        """Run `work` in the background unless this upload is running already."""
        self._forget_old()
        running = self._runs.get(upload_id)
        if running is not None and not running.finished:
            return running
        run = Run(upload_id, tenant_id, admin_id)
        self._runs[upload_id] = run
        run.task = asyncio.create_task(self._run(run, work))
        return run

    async def _run(self, run: Run, work: Callable[[Progress], Awaitable[ImportReport]]) -> None:
        try:
            run.report = await work(run.progress)
        except (Unavailable, ConcurrentChange) as error:  # the directory is busy: no bug
            log.warning("console upload %s failed: %s", run.upload_id[:8], error)
            run.failed = (
                "The directory is busy (another import, for example) or changed all along; "
                "nothing was changed. Try again in a moment."
            )
        except Exception:  # the page says it failed; the transaction left nothing behind
            log.exception("console upload %s failed", run.upload_id[:8])
            run.failed = "The import failed on our side; nothing was changed. Try again."
        finally:
            run.finished_at = time.monotonic()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for upload_id, run in list(self._runs.items()):
            if run.finished_at is not None and now - run.finished_at > KEEP_SECONDS:
                del self._runs[upload_id]


def runs(request: Request) -> Runs:
    """The app's registry (made on first use, so the app factory needs no console detail)."""
    registry: Runs | None = getattr(request.app.state, "console_runs", None)
    if registry is None:
        registry = request.app.state.console_runs = Runs()
    return registry
