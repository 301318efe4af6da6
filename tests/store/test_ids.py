"""Ids of users and audit events follow the order they are made in."""

import time
from uuid import RFC_4122, UUID

from roster.store.ids import time_ordered_id


def test_ids_are_version_7_uuids_of_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    made = time_ordered_id()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_only_increase_and_never_repeat():
    made = [time_ordered_id() for _ in range(20_000)]  # many share a millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert sorted(made, key=lambda u: u.hex) == made  # as SQLite stores them: hex text


def test_ids_keep_their_random_part():
    made = [time_ordered_id() for _ in range(100)]
    tails = {u.int & ((1 << 62) - 1) for u in made}
    assert len(tails) == len(made)
    assert all(isinstance(u, UUID) for u in made)
