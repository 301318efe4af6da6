"""The sign-in limiter: attempts counted before they are checked, right ones forgiven."""

from roster.throttle import LoginLimiter, account_key


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


def test_an_account_is_one_key_however_it_is_spelled():
    spellings = [
        "shared@example.com",
        "SHARED@example.com",
        "ſhared@example.com",
        " Shared@example.com ",
    ]
    assert {account_key("code", s) for s in spellings} == {"code:shared@example.com"}
    assert account_key("code", "a@example.com") != account_key("token", "a@example.com")
