"""The application `roster serve` runs: the SCIM API, and one FastAPI app with the console, the
app API and the health check."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from cachetools import LRUCache
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from roster import __version__
from roster.jobs.code_mail import CodeMail
from roster.jobs.provisioning_log import ProvisioningLog
from roster.logs import REQUEST_ID, request_id
from roster.oidc import Provider
from roster.settings import Settings
from roster.store.db import (
    Unavailable,
    Unstorable,
    dispose,
    healthy,
    newest_revision,
    read_engine,
    schema_revision,
)
from roster.store.prepared import DirectReads, DirectWrites
from roster.store.token_check import TokenCheck
from roster.throttle import LoginLimiter
from roster.web import SCIM_PREFIX, appapi, console, is_scim, metrics, retry_later, scim, sso
from roster.web.limits import BodyLimits, bounded
from roster.web.metrics import HttpRequests
from roster.web.scim.common import RateLimiter, token_cache

log = logging.getLogger("roster.web")


class Roster:
    """SCIM requests go straight to the SCIM routes (scoped as under a Mount at /scim/v2), the
    rest to the FastAPI app, which also runs the lifespan: SCIM uses none of FastAPI's
    middleware and routing, which would cost a lookup more than its own work. Every request's
    body is bounded here (web.limits), and its client address is the connecting one unless that
    is a trusted proxy, whose X-Forwarded-For names the client (uvicorn's
    ProxyHeadersMiddleware: the right-most address that is not a trusted proxy). Every answer
    is counted for /metrics by `requests`, unless metrics are off."""

    def __init__(
        self,
        api: FastAPI,
        scim_api: ASGIApp,
        limits: BodyLimits,
        proxies: list[str],
        requests: HttpRequests | None = None,
    ) -> None:
        self.api, self.scim, self.limits, self.requests = api, scim_api, limits, requests
        self._entry: ASGIApp = self._route
        if proxies:
            proxied = ProxyHeadersMiddleware(cast(Any, self._route), trusted_hosts=proxies)
            self._entry = cast(ASGIApp, proxied)  # uvicorn's narrower ASGI types

    @property
    def state(self) -> State:
        return self.api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._entry(scope, receive, send)
            return
        # Every request has an id, in what it logs and in its answer's X-Request-ID (each
        # request runs in a task of its own, so the id stays its own).
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        rid = request_id(given)
        REQUEST_ID.set(rid)
        header = (b"x-request-id", rid.encode())
        started, status = time.perf_counter(), 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self._entry(scope, receive, send_with_id)
        finally:
            # Answered, a 500 whose error goes on to the server's log included (a request that
            # sent nothing, its client gone, is not counted); the scope now names its route.
            if status and self.requests is not None:
                self.requests.observe(scope, status, time.perf_counter() - started)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        root, path = scope.get("root_path", ""), scope["path"]
        path = path[len(root) :] if root and path.startswith(root) else path
        app: ASGIApp = self.api
        if is_scim(path):
            # Scoped in place, as a Mount at /scim/v2 would: the front reads the route the SCIM
            # router leaves in it once the answer is sent.
            scope["app"] = self.api  # request.app: the engines, caches and limiters
            scope["app_root_path"] = scope.get("app_root_path", root)
            scope["root_path"] = root + SCIM_PREFIX
            app = self.scim
        await bounded(app, self.limits.of_path(path), path, scope, receive, send)


def create_app(
    engine: AsyncEngine, scim_rate_limit: float = 200.0, settings: Settings | None = None
) -> Roster:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.provisioning_log.close()
        await app.state.code_mail.close()
        await app.state.oidc.close()
        await asyncio.gather(*app.state.scim_token_uses)  # last uses being written
        await app.state.direct_reads.close()
        await app.state.direct_writes.close()
        await dispose(engine)

    # /docs with its script and styles served from fastapi-offline's package, not a CDN: it
    # works where the server or its reader has no internet. No /redoc: ReDoc's bundle fetches
    # its logo from Redocly's site.
    app = FastAPIOffline(
        title="Roster",
        version=__version__,
        lifespan=lifespan,
        static_url="/docs-assets",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.read_engine = read_engine(engine)
    app.state.scim_limiter = RateLimiter(scim_rate_limit)
    app.state.scim_tokens = token_cache()
    app.state.scim_token_uses = set()  # tasks writing tokens' last use (common._record_use)
    app.state.scim_bases = LRUCache(maxsize=256)
    app.state.settings = settings
    app.state.console_limiter = LoginLimiter(settings.console_failed_logins_per_minute)
    app.state.app_limiter = LoginLimiter(settings.app_sign_in_attempts_per_minute)
    app.state.code_mail = CodeMail(engine, settings)
    app.state.direct_reads = DirectReads(engine)
    app.state.direct_writes = DirectWrites(engine)
    app.state.provisioning_log = ProvisioningLog(app.state.direct_writes)
    app.state.token_check = TokenCheck(app.state.direct_reads)
    app.state.oidc = Provider(
        settings.sso_timeout_seconds, settings.sso_max_response_bytes,
        private_addresses=settings.sso_private_addresses,
    )  # fmt: skip
    app.include_router(appapi.router)
    app.include_router(sso.router)
    console.install(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        """Liveness and database reachability."""
        try:
            async with engine.connect() as conn:
                await healthy(conn)
        except Exception as error:  # any database failure is "unhealthy", never a 500
            return JSONResponse(
                {"status": "unavailable", "database": type(error).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Ready for traffic: the database answers and its schema is the newest migration's
        (a replica started before `roster db upgrade` ran, or beside a newer one, is not)."""
        try:
            async with engine.connect() as conn:
                await healthy(conn)
            revision = await schema_revision(engine)
        except Exception as error:  # any database failure is "not ready", never a 500
            return JSONResponse(
                {"status": "unavailable", "database": type(error).__name__}, status_code=503
            )
        expected = newest_revision()
        if revision != expected:
            return JSONResponse(
                {"status": "not_ready", "database": "ok", "schema": revision, "expected": expected},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "database": "ok", "schema": revision})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if console.wants_html(request):
            return console.problem_page(request, error.status_code, str(error.detail))
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Unavailable)
    async def busy(request: Request, error: Unavailable) -> Response:
        headers = retry_later(log, request.method, request.url.path, error)
        if console.wants_html(request):
            return console.busy_page(request, headers)
        return JSONResponse(
            {"detail": "The directory is busy or unreachable; try again in a moment."},
            status_code=503,
            headers=headers,
        )

    @app.exception_handler(Unstorable)
    async def unstorable(request: Request, error: Unstorable) -> Response:
        # Inputs are checked for control characters before they reach the store; this is
        # what a check that was missed answers, rather than a 500.
        log.warning("refused a value on %s %s: %s", request.method, request.url.path, error)
        detail = "A value contains a control character; remove it and try again."
        if console.wants_html(request):
            return console.problem_page(request, 400, detail)
        return JSONResponse({"detail": detail}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        if console.wants_html(request):
            return console.problem_page(request, 500, "Something went wrong on our side.")
        return JSONResponse({"detail": "an unexpected error occurred"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Where and what, never the value sent: an error must not echo the request back.
        said = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in error.errors()]
        return JSONResponse({"detail": jsonable_encoder(said)}, status_code=422)

    metrics.install(app, settings)
    requests = None
    if settings.metrics:
        requests = HttpRequests()
        requests.name(scim.ROUTES, SCIM_PREFIX)
        requests.name(r for r in app.routes if isinstance(r, Mount))  # the others know theirs
    scim_api = scim.create_app(app.state.provisioning_log, counted=settings.metrics)
    return Roster(app, scim_api, BodyLimits.of(settings), settings.proxies, requests)
