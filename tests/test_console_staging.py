"""Kept console uploads (web/console/staging.py) and the registry of running ones
(web/console/running.py), without a browser: outside tests/console, whose sync Playwright owns
the event loop."""

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest

from roster.domain.mode import Mode
from roster.jobs.imports import ImportReport, Progress
from roster.web.console import staging
from roster.web.console.running import Runs

TENANT, ADMIN = uuid.uuid4(), uuid.uuid4()


def test_an_upload_is_found_only_by_its_admin(tmp_path: Path) -> None:
    kept = staging.keep(tmp_path, TENANT, ADMIN, "people.csv", Mode.REPLACE, b"data")
    found = staging.find(tmp_path, kept.id, TENANT, ADMIN)
    assert found is not None and found.data() == b"data" and found.mode is Mode.REPLACE
    assert found.file_name == "people.csv"
    assert staging.find(tmp_path, kept.id, TENANT, uuid.uuid4()) is None  # another admin
    assert staging.find(tmp_path, kept.id, uuid.uuid4(), ADMIN) is None  # another organization
    assert staging.find(tmp_path, "../" + kept.id[3:], TENANT, ADMIN) is None
    assert staging.find(tmp_path, "x" * 43, TENANT, ADMIN) is None
    assert oct(kept.path.stat().st_mode & 0o777) == "0o600"
    staging.discard(tmp_path, kept.id)
    assert staging.find(tmp_path, kept.id, TENANT, ADMIN) is None
    assert list(staging.folder(tmp_path).iterdir()) == []


def test_an_upload_expires_after_an_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = staging.keep(tmp_path, TENANT, ADMIN, "a.csv", Mode.ADD, b"data")
    later = time.time() + staging.LIFETIME_SECONDS + 1
    monkeypatch.setattr(staging.time, "time", lambda: later)
    assert staging.find(tmp_path, kept.id, TENANT, ADMIN) is None
    assert not kept.path.exists()


def test_prune_deletes_old_files_and_leftovers(tmp_path: Path) -> None:
    old = staging.keep(tmp_path, TENANT, ADMIN, "old.csv", Mode.ADD, b"old")
    leftover = staging.folder(tmp_path) / "crashed.csv.part"
    leftover.write_bytes(b"")
    past = time.time() - staging.LIFETIME_SECONDS - 10
    for path in (old.path, leftover, old.path.with_suffix(".json")):
        os.utime(path, (past, past))
    new = staging.keep(tmp_path, TENANT, ADMIN, "new.csv", Mode.ADD, b"new")
    assert sorted(p.name for p in staging.folder(tmp_path).iterdir()) == sorted(
        [f"{new.id}.csv", f"{new.id}.json"]
    )


async def test_a_run_reports_progress_and_its_outcome() -> None:
    runs = Runs()
    release = asyncio.Event()

    async def work(progress: Progress) -> ImportReport:
        progress("applying", 50, 100)
        await release.wait()
        return ImportReport("applied", {"added": 1}, import_id=uuid.uuid4())

    run = runs.start("u1", TENANT, ADMIN, work)
    await asyncio.sleep(0)
    assert run.percent == 60 and not run.finished
    assert runs.start("u1", TENANT, ADMIN, work) is run  # a second apply joins the first
    assert runs.get("u1", TENANT, uuid.uuid4()) is None  # another admin sees nothing
    release.set()
    assert run.task is not None
    await run.task
    assert run.finished and run.percent == 100 and run.report and run.report.status == "applied"


async def test_a_failed_run_says_so() -> None:
    async def work(progress: Progress) -> ImportReport:
        raise RuntimeError("database went away")

    run = Runs().start("u2", TENANT, ADMIN, work)
    assert run.task is not None
    await run.task
    assert run.finished and run.failed and "nothing was changed" in run.failed


async def test_a_run_that_meets_a_busy_directory_says_so_in_one_log_line(caplog) -> None:
    from roster.store.db import Unavailable

    async def work(progress: Progress) -> ImportReport:
        raise Unavailable("the database is unavailable (waiting for the write lock)")

    run = Runs().start("u3", TENANT, ADMIN, work)
    assert run.task is not None
    await run.task
    assert run.failed and "directory is busy" in run.failed and "Try again" in run.failed
    assert [r.exc_info for r in caplog.records] == [None]  # one line, no traceback
