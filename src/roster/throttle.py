"""Limits on failed sign-ins, for every door that takes a password (SFTP, the console)."""

import time
from collections import deque

from roster.domain.fields import clean, key


def account_key(scope: str, name: str) -> str:
    """The limiter's key for an account named by a username or e-mail address, folded as the
    directory compares them, so no other spelling of one account escapes its limit."""
    return f"{scope}:{key(clean(name))}"


class LoginLimiter:
    """At most `per_minute` failed logins per client address and per username (per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, at: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] < at - 60:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        at = time.monotonic()
        return any(len(self._recent(k, at)) >= self.per_minute for k in keys)

    def failed(self, *keys: str) -> None:
        at = time.monotonic()
        if len(self._failures) > 100_000:  # a scan of many addresses must not grow this forever
            self._failures = {k: v for k, v in self._failures.items() if self._recent(k, at)}
        for k in keys:
            self._failures.setdefault(k, deque()).append(at)

    def forgive(self, *keys: str) -> None:
        """Take back an attempt counted before it was checked, once it proved right."""
        for k in keys:
            attempts = self._failures.get(k)
            if attempts:
                attempts.pop()
