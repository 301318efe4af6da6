"""The provisioning log's writer: SCIM requests hand their log rows here once answered, and a
task writes what has gathered every second (sooner at BATCH rows) in one executemany on
DirectWrites (the driver's own, cheaper a row than SQLAlchemy's), off the requests' path. The task
exists only while rows wait; closing writes what is left. A crash loses at most the last second
of rows, and never directory data (they are separate transactions)."""

import asyncio
import contextlib
import logging
from contextvars import Context
from typing import Any

from roster.store import provisioning_log
from roster.store.db import Unavailable
from roster.store.prepared import DirectWrites

log = logging.getLogger("roster.scim.log")
SECONDS = 1.0  # the longest a row waits to be written
BATCH = 500  # rows that are written at once without waiting for the second
LIMIT = 10_000  # rows waiting; beyond them a row is dropped (and counted in the log)


class ProvisioningLog:
    def __init__(self, writes: DirectWrites, seconds: float = SECONDS) -> None:
        self._writes, self._seconds = writes, seconds
        self._waiting: list[dict[str, Any]] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(self, row: dict[str, Any]) -> None:
        """Write this row (the table's columns) within a second."""
        if len(self._waiting) >= LIMIT:
            self.dropped += 1
            if self.dropped % 1000 == 1:  # one line per thousand, not one per request
                log.warning("provisioning log full: %d rows dropped so far", self.dropped)
            return
        self._waiting.append(row)
        if self._task is None:
            # A context of its own: it writes rows of every request, not of the one that woke it.
            self._task = asyncio.get_running_loop().create_task(self._run(), context=Context())
        elif len(self._waiting) >= BATCH:
            self._full.set()

    async def close(self) -> None:
        """Write every row waiting (at shutdown)."""
        task = self._task
        if task is not None:
            self._full.set()
            await task

    async def _run(self) -> None:
        try:
            while self._waiting:
                with contextlib.suppress(TimeoutError):  # a second passed, or BATCH rows
                    await asyncio.wait_for(self._full.wait(), self._seconds)
                self._full.clear()
                rows, self._waiting = self._waiting, []
                await self._write(rows)
        finally:
            self._task = None  # no await after the last check: a row added next starts a task

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            async with self._writes.transaction() as conn:
                await provisioning_log.record(conn, rows)
        except Unavailable as error:
            log.warning("%d provisioning log rows were not written: %s", len(rows), error)
        except Exception:
            log.exception("%d provisioning log rows were not written", len(rows))
