"""What every SCIM endpoint needs: the database, the caller's token, the JSON body, If-Match."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import UUID

import orjson
from cachetools import LRUCache, TTLCache
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from roster.domain.fields import has_control
from roster.logs import ORGANIZATION
from roster.store import one_user, scim_tokens
from roster.store.directory import ConcurrentChange
from roster.web.scim.errors import ScimError
from roster.web.scim.note import note_of
from roster.web.scim.patch import operations

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from roster.store.prepared import Connection, DirectReads, DirectWrites

T = TypeVar("T")
RETRIES = 5
log = logging.getLogger("roster.web.scim")


def engine_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def direct_reads(request: Request) -> DirectReads:
    """Where the busiest reads go (a user by userName or id): see store.prepared."""
    reads: DirectReads = request.app.state.direct_reads
    return reads


def direct_writes(request: Request) -> DirectWrites:
    """Where SCIM writes to one user go (see store.prepared)."""
    writes: DirectWrites = request.app.state.direct_writes
    return writes


def reader_of(request: Request) -> AsyncEngine:
    """The engine for requests that only read (see store.db.read_engine)."""
    engine: AsyncEngine = request.app.state.read_engine
    return engine


# How long a verified token is trusted without asking the database again. Reading the token and
# its organization's mapping cost a query on every request; so a revocation, or a change of the
# organization's attribute mapping, reaches a running server within this many seconds.
TOKEN_CACHE_SECONDS = 5.0


def token_cache(
    seconds: float = TOKEN_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
) -> TTLCache[bytes, Any]:
    """Verified tokens by the SHA-256 of the bearer value, or the verification under way (a
    failed one is never kept)."""
    return TTLCache(maxsize=1024, ttl=seconds, timer=clock)


async def token_of(request: Request) -> scim_tokens.Token:
    """The bearer token's organization; the same 401 for every kind of wrong."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    token = None
    if scheme.lower() == "bearer" and presented:
        token = await _verified(request, presented.strip())
    if token is None:
        raise ScimError(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    note = note_of(request)
    note.tenant_id, note.token, note.organization = token.tenant_id, token.name, token.organization
    ORGANIZATION.set(str(token.tenant_id))  # for what this request logs
    wait = request.app.state.scim_limiter.wait(token.id)
    if wait:
        raise ScimError(
            429,
            "too many requests for this token; retry later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    return token


async def _verified(request: Request, presented: str) -> scim_tokens.Token | None:
    """The token from the cache, or verified once however many requests ask at the same time
    (when an entry expires under load, fifty requests at once would otherwise each ask the
    database): the cache holds the verification while it runs. A failed one is not kept."""
    cache = request.app.state.scim_tokens
    key = hashlib.sha256(presented.encode()).digest()
    kept = cache.get(key)
    if isinstance(kept, scim_tokens.Token):
        return kept
    verifying = kept is None
    if kept is None:
        kept = asyncio.ensure_future(scim_tokens.authenticate(direct_reads(request), presented))
        cache[key] = kept
    try:
        token: scim_tokens.Token | None = await asyncio.shield(kept)
    except Exception:
        if cache.get(key) is kept:
            del cache[key]
        raise
    if cache.get(key) is kept:
        if token is None:
            del cache[key]
        else:
            cache[key] = token  # its own expiry from now on; the verification is done
    if verifying and token is not None and scim_tokens.use_due(token):
        _record_use(request, token)
    return token


def _record_use(request: Request, token: scim_tokens.Token) -> None:
    """Write the token's last use off the request's path (see scim_tokens.record_use). It is
    asked only when a verification reads a last use older than a minute, so a busy token costs
    a write a minute, not one per request."""
    writes = direct_writes(request)

    async def record() -> None:
        try:
            async with writes.transaction() as conn:
                await scim_tokens.record_use(conn, token)
        except Exception:
            log.warning("the last use of SCIM token %s was not recorded", token.id, exc_info=True)

    pending: set[asyncio.Task[None]] = request.app.state.scim_token_uses
    task = asyncio.create_task(record())
    pending.add(task)
    task.add_done_callback(pending.discard)


class RateLimiter:
    """A token bucket per SCIM token: `rate` requests a second on average, bursts of twice that.
    Kept per process: each replica enforces it for the requests it serves."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, 2 * rate, clock
        self._buckets: dict[UUID, tuple[float, float]] = {}  # token -> (allowance, at)

    def wait(self, key: UUID) -> float:
        """0 when a request may go now (and counts it); otherwise seconds until one may."""
        now = self.clock()
        allowance, at = self._buckets.get(key, (self.burst, now))
        allowance = min(self.burst, allowance + (now - at) * self.rate)
        if allowance < 1:
            self._buckets[key] = (allowance, now)
            return (1 - allowance) / self.rate
        self._buckets[key] = (allowance - 1, now)
        return 0.0


Endpoint = Callable[[Request], Awaitable[Response]]


def route(path: str, **by_method: Endpoint) -> Route:
    """One path's endpoints by method (`route("/Users", GET=..., POST=...)`), so a 405 names
    every method the path allows. HEAD is answered as GET."""
    endpoints = {method.upper(): endpoint for method, endpoint in by_method.items()}
    if "GET" in endpoints:
        endpoints["HEAD"] = endpoints["GET"]
    return Route(path, _Methods(endpoints), methods=list(endpoints))


class _Methods:
    """A route's ASGI app: the endpoint of the request's method. Plain ASGI, so Starlette does
    not wrap it in its per-request exception-handler layers (SCIM's own layer answers
    failures)."""

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response = await self.endpoints[request.method](request)
        await response(scope, receive, send)


def base_url(request: Request) -> str:
    """The service's address as this client reached it (`https://host/scim/v2`), kept per
    address (app.state.scim_bases, an LRUCache): building URLs from the request cost more than
    the lookup they describe."""
    scope = request.scope
    root = scope.get("root_path", "")
    kept: LRUCache[tuple[str, str, str], str] = request.app.state.scim_bases
    address = (scope["scheme"], request.headers.get("host", ""), root)
    found = kept.get(address)
    if found is None:
        found = kept[address] = str(request.url.replace(path=root, query="", fragment=""))
    return found


def location(request: Request, collection: str, resource_id: UUID | str) -> str:
    """The URL of a resource: `location(request, "Users", id)`."""
    return f"{base_url(request)}/{collection}/{resource_id}"


def actor(token: scim_tokens.Token) -> str:
    return f"scim token {token.name}"


class Versioned(Protocol):
    version: int


def check_version(resource: Versioned, if_match: str | None) -> None:
    """Honour If-Match: a write based on an older version is refused with 412."""
    if if_match is None or if_match.strip() == "*":
        return
    versions = {v.strip().removeprefix("W/").strip('"') for v in if_match.split(",")}
    if str(resource.version) not in versions:
        raise ScimError(412, "the resource has changed since that version (If-Match)")


async def read_json(request: Request) -> Any:
    """The request's JSON body: strict UTF-8 JSON only (no NaN or Infinity, no number beyond a
    double, no lone surrogates, nesting at most 1,024 deep), so nothing stored can break a
    later response."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise ScimError(400, "the body is not valid JSON", "invalidSyntax") from None


async def read_patch(request: Request) -> Any:
    """A PATCH request's JSON body, refused before any work when it holds more operations than
    ROSTER_SCIM_MAX_PATCH_OPERATIONS."""
    body = await read_json(request)
    operations(body, request.app.state.settings.scim_max_patch_operations)
    return body


async def rewriting(
    writes: DirectWrites, if_match: str | None, work: Callable[[Connection], Awaitable[T]]
) -> T:
    """Run a write to one user that reads it and changes it, on DirectWrites. If another writer
    changed the user in between, the client that sent If-Match gets 412; one that did not
    (Entra ID never does) has its request redone on the fresh state, a few times."""
    for _ in range(RETRIES):
        try:
            async with one_user.transaction(writes) as conn:
                return await work(conn)
        except ConcurrentChange:
            if if_match is not None:
                raise ScimError(412, "the resource has changed since that version") from None
    raise ScimError(409, "the resource keeps changing; retry later")


def identifier_problem(value: str, longest: int = 255) -> str | None:
    """What is wrong with an identifier-like string, in words, or None."""
    if not value or len(value) > longest or has_control(value):
        return f"must be text of 1 to {longest} characters without control characters"
    return None


def check_identifier(attribute: str, value: Any, longest: int = 255) -> str:
    """An identifier-like string an identity provider sends (externalId, employeeNumber, a
    manager's id, a group's name): a string of at most `longest` characters, no control
    characters."""
    if not isinstance(value, str) or identifier_problem(value, longest):
        raise ScimError(
            400,
            f"{attribute} must be text of 1 to {longest} characters without control characters",
            "invalidValue",
        )
    return value
