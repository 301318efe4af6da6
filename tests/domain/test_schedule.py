"""The daily pickup's time: a wall-clock time in the organization's zone, through DST."""

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roster.domain.schedule import ScheduleError, daily_time, next_run, zone

ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]


@given(
    after=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    at=st.times(),
    name=st.sampled_from(ZONES),
)
def test_the_next_run_is_the_first_later_moment_the_clock_shows_the_time(after, at, name):
    tz = zone(name)
    at = at.replace(microsecond=0)
    run = next_run(after, at, tz)
    assert after < run <= after + timedelta(hours=25)  # at most a day (and a DST hour) ahead
    local = run.astimezone(tz)
    if (local.hour, local.minute) != (at.hour, at.minute):
        # Only where the clock skipped that time: it runs as far past as it was skipped.
        assert datetime.combine(local.date(), at, tzinfo=tz).astimezone(UTC) == run


def test_the_night_clocks_go_forward_and_back_in_amsterdam():
    ams = zone("Europe/Amsterdam")
    spring = next_run(datetime(2026, 3, 28, 12, tzinfo=UTC), time(2, 30), ams)
    assert spring.astimezone(ams).strftime("%H:%M %Z") == "03:30 CEST"
    autumn = next_run(datetime(2026, 10, 24, 12, tzinfo=UTC), time(2, 30), ams)
    assert autumn == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30, once
    after_it = next_run(autumn, time(2, 30), ams)
    assert after_it.date().isoformat() == "2026-10-26"


@pytest.mark.parametrize("text", ["2:00", "24:00", "02:60", "0200", "noon", ""])
def test_a_time_must_be_hh_mm(text):
    with pytest.raises(ScheduleError, match="HH:MM"):
        daily_time(text)


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "", "Europe/"])
def test_a_zone_must_be_an_iana_name(name):
    with pytest.raises(ScheduleError, match="IANA"):
        zone(name)
