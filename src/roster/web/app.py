"""The application `roster serve` runs: the SCIM API, and one FastAPI app with the console, the
app API and the health check."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cachetools import LRUCache
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from roster import __version__
from roster.settings import Settings
from roster.store.db import dispose, healthy, read_engine
from roster.store.prepared import DirectReads, DirectWrites
from roster.store.token_check import TokenCheck
from roster.throttle import LoginLimiter
from roster.web import appapi, console, scim
from roster.web.scim.common import RateLimiter, token_cache

SCIM_PREFIX = "/scim/v2"
log = logging.getLogger("roster.web")


class Roster:
    """SCIM requests go straight to the SCIM routes (scoped as under a Mount at /scim/v2), the
    rest to the FastAPI app, which also runs the lifespan. FastAPI's own middleware and routing
    were a sixth of a SCIM lookup's cost; SCIM uses none of them."""

    def __init__(self, api: FastAPI, scim_api: ASGIApp) -> None:
        self.api, self.scim = api, scim_api

    @property
    def state(self) -> State:
        return self.api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root, path = scope.get("root_path", ""), scope["path"]
            path = path[len(root) :] if root and path.startswith(root) else path
            if path == SCIM_PREFIX or path.startswith(SCIM_PREFIX + "/"):
                scope = {
                    **scope,
                    "app": self.api,  # request.app: the engines, caches and limiters
                    "app_root_path": scope.get("app_root_path", root),
                    "root_path": root + SCIM_PREFIX,
                }
                await self.scim(scope, receive, send)
                return
        await self.api(scope, receive, send)


def create_app(
    engine: AsyncEngine, scim_rate_limit: float = 200.0, settings: Settings | None = None
) -> Roster:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.gather(*app.state.scim_token_uses)  # last uses being written
        await app.state.direct_reads.close()
        await app.state.direct_writes.close()
        await dispose(engine)

    app = FastAPI(title="Roster", version=__version__, lifespan=lifespan)
    app.state.engine = engine
    app.state.read_engine = read_engine(engine)
    app.state.scim_limiter = RateLimiter(scim_rate_limit)
    app.state.scim_tokens = token_cache()
    app.state.scim_token_uses = set()  # tasks writing tokens' last use (common._record_use)
    app.state.scim_bases = LRUCache(maxsize=256)
    app.state.settings = settings
    app.state.console_limiter = LoginLimiter(settings.console_failed_logins_per_minute)
    app.state.app_limiter = LoginLimiter(settings.app_sign_in_attempts_per_minute)
    app.state.direct_reads = DirectReads(engine)
    app.state.direct_writes = DirectWrites(engine)
    app.state.token_check = TokenCheck(app.state.direct_reads)
    app.include_router(appapi.router)
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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if console.wants_html(request):
            return console.problem_page(request, error.status_code, str(error.detail))
        return JSONResponse(
            {"detail": error.detail}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        if console.wants_html(request):
            return console.problem_page(request, 500, "Something went wrong on our side.")
        return JSONResponse({"detail": "an unexpected error occurred"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(error.errors())}, status_code=422)

    return Roster(app, scim.create_app())
