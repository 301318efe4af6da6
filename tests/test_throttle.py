"""The sign-in limiter: attempts counted before they are checked, right ones forgiven."""

from roster.throttle import LoginLimiter


def test_attempts_count_until_forgiven():
    limiter = LoginLimiter(per_minute=3)
    for _ in range(3):
        assert not limiter.blocked("1.2.3.4", "acme:fm")
        limiter.failed("1.2.3.4", "acme:fm")  # counted before the (slow) check
    assert limiter.blocked("1.2.3.4") and limiter.blocked("acme:fm")
    assert not limiter.blocked("5.6.7.8", "acme:other")
    limiter.forgive("1.2.3.4", "acme:fm")  # the last one was right
    assert not limiter.blocked("1.2.3.4", "acme:fm")
    limiter.forgive("never-seen")  # nothing to take back: no error
