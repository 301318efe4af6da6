"""What every `roster` command shares: consoles, common options, running work on the database.

The CLI imports what a command needs when that command runs, so that `roster --help` and a small
command answer at once: modules of the store, the jobs and the services are imported inside the
commands' functions, never at the top of a CLI module."""

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from roster.jobs.imports import Progress as Shown

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

TenantOption = Annotated[str, typer.Option("--tenant", help="The organization's slug.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


# The failures a command maps to an exit, by the module that defines each: looked up only in
# modules already loaded (a module never imported raised none), so a command loads no job or
# service for its error handling alone.
_REFUSED = (
    ("roster.store.tenants", "TenantError"),
    ("roster.store.dropboxes", "DropboxError"),
    ("roster.domain.schedule", "ScheduleError"),
    ("roster.domain.passwords", "PasswordError"),
    ("roster.store.db", "Unstorable"),
    ("roster.domain.sso", "SsoError"),
    ("roster.sealing", "SealError"),
)
_FAILED = (("roster.jobs.imports", "UndoError"), ("roster.jobs.pickup", "PickupError"))
_CONCURRENT = (("roster.store.directory", "ConcurrentChange"),)


def _loaded(classes: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(sys.modules[mod], name) for mod, name in classes if mod in sys.modules)


def run(work: "Callable[[AsyncEngine], Awaitable[T]]", as_json: bool = False) -> T:
    """Run one piece of work against a migrated database, and map known failures to exits: one
    line on stderr (or, with `as_json`, an `error` object on stdout), never a traceback."""
    from roster.settings import get_settings
    from roster.store.db import Unavailable, create_engine, migrate

    async def main() -> T:
        settings = get_settings()
        engine = create_engine(settings.resolved_database_url, settings.database_connections)
        try:
            await migrate(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except Exception as error:
        if isinstance(error, _loaded(_REFUSED)):
            fail(2, "refused", str(error), as_json)
        if isinstance(error, _loaded(_FAILED)):
            fail(1, "failed", str(error), as_json)
        if isinstance(error, _loaded(_CONCURRENT)):
            fail(1, "concurrent_change", str(error), as_json)
        if isinstance(error, Unavailable):
            message = f"{error}; nothing was changed, try again in a moment"
            fail(1, "unavailable", message, as_json)
        raise


def fail(exit_code: int, code: str, message: str, as_json: bool) -> NoReturn:
    """End the command with an error: `code` names its kind for scripts."""
    if as_json:
        print_json({"error": {"code": code, "message": message}})
    else:
        err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def operator() -> str:
    """Who runs the command, for the audit trail."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def print_json(data: Any) -> None:
    # Written as encoded: a large import's plan is never one string in memory.
    json.dump(data, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


@contextmanager
def progress_output(enabled: bool) -> "Iterator[Shown]":
    """A progress bar on stderr where a person watches; plain phase lines where a log does."""
    if not enabled:
        yield lambda phase, done, total: None
        return
    if not err.is_terminal:
        last: dict[str, int] = {}

        def log_line(phase: str, done: int, total: int) -> None:
            if last.get(phase) != done:
                last[phase] = done
                err.print(f"{phase} {done}/{total}", highlight=False)

        yield log_line
        return
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}
    with bar:

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
