"""Times are stored as SQLAlchemy stores them, whichever path binds them."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from roster.store.schema import UTCDateTime

SQLITE = sqlite.dialect()
ZONES = st.builds(timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m)))


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES))
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    ours = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    theirs = sa.DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert ours(value) == theirs(value.astimezone(UTC).replace(tzinfo=None))


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)(datetime(2026, 1, 1))
