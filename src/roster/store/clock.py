"""The store's clock: every time the store writes is aware UTC, from here."""

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
