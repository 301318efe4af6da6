"""What Roster counts for Prometheus: the `roster_` series, in one registry per process, that the
web front, the SCIM API, imports, pickups and the app's sign-in add to (`/metrics` serves them:
web/metrics.py). Every label is bounded: an organization is its slug, a method one of HTTP's own
(else "other"), a result or outcome one of a few words. Where a series is counted on every
request, its labelled children are made once and kept: prometheus-client's `labels()` would cost
each request more than the counting itself."""

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
)

from roster import __version__

# No `_created` series: Prometheus' text format has no use for them, and they would double
# every counter's lines.
disable_created_metrics()
REGISTRY = CollectorRegistry()
# The process's own series (CPU, memory, open files, the garbage collector, Python's version),
# as prometheus-client's default registry has them.
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

# Seconds: a SCIM lookup takes milliseconds, a console page tens of them, an upload seconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds: a small file's import takes a fraction of one, 100,000 users tens of them.
IMPORT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

BUILD = Info("roster_build", "The version of Roster this process runs.", registry=REGISTRY)
BUILD.info({"version": __version__})

HTTP_REQUESTS = Histogram(
    "roster_http_request_duration_seconds",
    "HTTP requests by method, route (its template) and status, and how long each took to answer.",
    ("method", "route", "status"),
    buckets=REQUEST_BUCKETS,
    registry=REGISTRY,
)
SCIM_REQUESTS = Counter(
    "roster_scim_requests",
    "SCIM requests by organization (empty: no valid token), method and outcome.",
    ("organization", "method", "outcome"),
    registry=REGISTRY,
)
IMPORTS = Counter(
    "roster_imports",
    "Imports by organization, channel (csv, cli, sftp) and result (applied, held, rejected, "
    "skipped, failed).",
    ("organization", "channel", "result"),
    registry=REGISTRY,
)
IMPORT_SECONDS = Histogram(
    "roster_import_duration_seconds",
    "How long imports took, by channel and result.",
    ("channel", "result"),
    buckets=IMPORT_BUCKETS,
    registry=REGISTRY,
)
PICKUPS = Counter(
    "roster_pickups",
    "Drop box pickups by organization, trigger (daily, upload, cli) and result (applied, held, "
    "rejected, skipped, no_file, busy, not_due, failed).",
    ("organization", "trigger", "result"),
    registry=REGISTRY,
)
PICKUP_SECONDS = Histogram(
    "roster_pickup_duration_seconds",
    "How long drop box pickups took, by trigger and result.",
    ("trigger", "result"),
    buckets=IMPORT_BUCKETS,
    registry=REGISTRY,
)
APP_SIGN_INS = Counter(
    "roster_app_sign_ins",
    "App sign-ins with an e-mailed code, by result (signed_in, wrong_code, throttled).",
    ("result",),
    registry=REGISTRY,
)
APP_SIGN_IN_CODES = Counter(
    "roster_app_sign_in_codes_requested",
    "Sign-in codes the app asked for, by result (accepted: queued for mailing if the address "
    "is a user's; throttled).",
    ("result",),
    registry=REGISTRY,
)
# Every result a user would look for exists from the start, at 0, so a rate is never missing.
_SIGN_INS = {r: APP_SIGN_INS.labels(r) for r in ("signed_in", "wrong_code", "throttled")}
_CODES = {r: APP_SIGN_IN_CODES.labels(r) for r in ("accepted", "throttled")}


def method(name: str) -> str:
    """An HTTP method as a label: one of HTTP's own, or "other" (a client may send any word)."""
    return name if name in METHODS else "other"


def scim_outcome(status: int) -> str:
    """A SCIM answer's status in a word: ok, unauthorized (no valid token), throttled (the
    token's rate limit), refused (any other 4xx), unavailable (the database; 503) or failed."""
    if status < 400:
        return "ok"
    if status == 401:
        return "unauthorized"
    if status == 429:
        return "throttled"
    if status < 500:
        return "refused"
    return "unavailable" if status == 503 else "failed"


_scim: dict[tuple[str | None, str, int], Any] = {}


def scim_request(organization: str | None, method_name: str, status: int) -> None:
    """Count one SCIM request of an organization (its slug; None without a valid token)."""
    name = method(method_name)
    key = (organization, name, status)
    child = _scim.get(key)
    if child is None:
        child = _scim[key] = SCIM_REQUESTS.labels(organization or "", name, scim_outcome(status))
    child.inc()


def app_sign_in(result: str) -> None:
    """Count an exchange of a code for tokens: signed_in, wrong_code or throttled."""
    _SIGN_INS[result].inc()


def app_sign_in_code(result: str) -> None:
    """Count a request for a sign-in code: accepted or throttled."""
    _CODES[result].inc()


class Run:
    """An import or pickup being timed: its result, once it has one."""

    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: str | None = None


@contextmanager
def _timed(
    count: Counter, seconds: Histogram, organization: str, how: str, counted: bool = True
) -> Iterator[Run]:
    """Count and time the block by the result it sets (none set: not counted), or as failed
    when it raises (unless not `counted` at all)."""
    run, started = Run(), time.perf_counter()
    try:
        yield run
    except Exception:
        if counted:
            run.result = "failed"
        raise
    finally:
        if run.result is not None:
            count.labels(organization, how, run.result).inc()
            seconds.labels(how, run.result).observe(time.perf_counter() - started)


def import_run(
    organization: str, channel: str, counted: bool = True
) -> AbstractContextManager[Run]:
    """An import of an organization through a channel (a dry run is not `counted`)."""
    return _timed(IMPORTS, IMPORT_SECONDS, organization, channel, counted)


def pickup_run(organization: str, trigger: str) -> AbstractContextManager[Run]:
    """A drop box pickup of an organization, started by a trigger."""
    return _timed(PICKUPS, PICKUP_SECONDS, organization, trigger)
