"""Ids of users and audit events: UUIDs in the order they are made (RFC 9562's version 7).

A random id (version 4) lands anywhere in its primary key and in every index that holds it, so a
large import touches pages all over them; an id that starts with the time it was made lands at
their end. Still a UUID, unguessable in its last 74 bits:

    >>> a, b = time_ordered_id(), time_ordered_id()
    >>> a.version, a < b
    (7, True)
"""

import os
import threading
import time
from uuid import UUID

_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_RANDOM_A = (1 << 12) - 1  # the 12 random bits after the version
_RANDOM_B = (1 << 62) - 1  # the 62 random bits after the variant

_BATCH = 1024  # ids' random bits drawn from the system at a time: one call instead of 1,024

_lock = threading.Lock()
_last = 0
_random: list[int] = []
os.register_at_fork(after_in_child=_random.clear)  # a child draws bits of its own


def time_ordered_id() -> UUID:
    """A version 7 UUID: the Unix time in milliseconds, then random bits. Ids made by one
    process only increase: one made in the same millisecond as the last, and not above it,
    is the last plus one."""
    global _last
    with _lock:
        if not _random:
            drawn = os.urandom(10 * _BATCH)
            _random.extend(int.from_bytes(drawn[n : n + 10]) for n in range(0, len(drawn), 10))
        random = _random.pop()
        value = (
            (time.time_ns() // 1_000_000) << 80
            | _VERSION_7
            | (random >> 64 & _RANDOM_A) << 64
            | _VARIANT
            | random & _RANDOM_B
        )
        if value <= _last:
            value = _last + 1
        _last = value
    return UUID(int=value)
