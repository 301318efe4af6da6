"""`/metrics`: Roster's series (roster.metrics) in Prometheus' text format, to loopback and the
addresses ROSTER_METRICS_ALLOWED names, a 404 to everyone else (the series name organizations);
and the HTTP requests' series, which the front (web/app.py) adds to once an answer is sent.

Held imports and the drop boxes' last arrivals are the database's state, which other replicas
and the command line change too, so they are read when scraped rather than kept by this
process: two small reads (one row per organization), given STATE_SECONDS at most."""

import asyncio
import ipaddress
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Address
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Mount
from starlette.types import Scope

from roster import metrics
from roster.jobs import pickup as pickups
from roster.settings import IPNetwork, Settings
from roster.store import dropboxes, imports
from roster.store.clock import now

log = logging.getLogger("roster.web.metrics")

PATH = "/metrics"
UNKNOWN = "unknown"  # the route of a path no route serves (or of a request refused before one)
STATE_SECONDS = 3.0  # a scrape waits this long for the database's state, then goes without it
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes


class HttpRequests:
    """Counts answered HTTP requests into roster_http_request_duration_seconds, by the route's
    template (`/users/{user_id}`, never the path: paths are unbounded), the method and the
    status. Each (route, method, status) has its child made once."""

    def __init__(self) -> None:
        self._templates: dict[int, str] = {}  # by the id of a route (routes live as long)
        self._children: dict[tuple[int, str, int], Any] = {}

    def name(self, routes: Iterable[BaseRoute], prefix: str = "") -> None:
        """The templates of routes served under a prefix (the SCIM API's), and of mounts
        (`/static/{path}`, known by the app a mount hands requests to)."""
        for route in routes:
            if isinstance(route, Mount):
                template = f"{prefix}{route.path}/{{path}}"
                self._templates[id(route)] = self._templates[id(route.app)] = template
            else:
                self._templates[id(route)] = prefix + getattr(route, "path", UNKNOWN)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """One answered request: its scope after routing, the status sent, its duration."""
        route = scope.get("route") or scope.get("endpoint")  # a mount leaves its endpoint
        method = metrics.method(scope["method"])
        key = (id(route), method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metrics.HTTP_REQUESTS.labels(
                method, self._template(route), str(status)
            )
        child.observe(seconds)

    def _template(self, route: object) -> str:
        found = self._templates.get(id(route))
        if found is None:
            path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
            found = self._templates[id(route)] = path or UNKNOWN
        return found


FORWARDING = ("x-forwarded-for", "forwarded", "x-real-ip")  # headers a proxy adds


def allowed(client: Address | None, networks: list[IPNetwork], forwarded: bool = False) -> bool:
    """Whether a client (as the front resolved it: behind a trusted proxy, the address the proxy
    names) may read the metrics: an address of the networks given, or loopback when the request
    came straight from this host. A request a proxy forwarded is never loopback's: through a
    proxy on this host that ROSTER_TRUSTED_PROXIES does not name, every visitor connects from
    loopback."""
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is IPv4's loopback
    if any(address in network for network in networks):
        return True
    return address.is_loopback and not forwarded


def install(app: FastAPI, settings: Settings) -> None:
    """`GET /metrics`, unless ROSTER_METRICS turns it off (then it is a 404, as for anyone not
    allowed: nothing tells that it exists)."""
    if not settings.metrics:
        return
    networks = settings.metrics_networks

    @app.get(PATH, include_in_schema=False)
    async def scrape(request: Request) -> Response:
        forwarded = any(name in request.headers for name in FORWARDING)
        if not allowed(request.client, networks, forwarded):
            raise HTTPException(404)
        state = await _state(request.app.state.read_engine)
        # Rendering walks every series: off the event loop, which goes on serving requests.
        body = await asyncio.to_thread(generate_latest, _Scrape(state))
        return Response(body, media_type=CONTENT_TYPE)


class _Scrape(Collector):
    """The process's registry and this scrape's reading of the database, as one collector."""

    def __init__(self, state: list[Metric]) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from metrics.REGISTRY.collect()
        yield from self.state


async def _state(engine: AsyncEngine) -> list[Metric]:
    """Held imports and the drop boxes' last arrivals, read now; without them (and with
    roster_metrics_database_up 0) when the database does not answer within STATE_SECONDS."""
    up = GaugeMetricFamily(
        "roster_metrics_database_up",
        "1 when this scrape read the held imports and drop boxes from the database, else 0 "
        "(and those series are missing).",
    )
    try:
        async with asyncio.timeout(STATE_SECONDS):
            async with engine.connect() as conn:
                held = await imports.held_by_organization(conn, pickups.CHANNEL)
                boxes = await dropboxes.all_enabled(conn)
    except Exception as error:  # unavailable, too slow, anything: the rest is still served
        log.warning("/metrics went without the database's state: %s", type(error).__name__)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    waiting = GaugeMetricFamily(
        "roster_imports_held",
        "SFTP pickups the deletion guard held, waiting for an admin's approval, by organization.",
        labels=["organization"],
    )
    for slug, count in sorted(held.items()):
        waiting.add_metric([slug], count)
    at = now()
    arrival = GaugeMetricFamily(
        "roster_dropbox_last_arrival_age_seconds",
        "Seconds since the last file arrived in an enabled drop box (before any did, since the "
        "drop box was made), by organization.",
        labels=["organization"],
    )
    for box in sorted(boxes, key=lambda b: b.slug):
        arrival.add_metric([box.slug], (at - box.last_arrival).total_seconds())
    return [up, waiting, arrival]
