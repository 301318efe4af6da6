"""Application factory: one FastAPI app that later mounts SCIM, the console and the app API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from roster import __version__
from roster.store.db import healthy


def create_app(engine: AsyncEngine) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(title="Roster", version=__version__, lifespan=lifespan)
    app.state.engine = engine

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

    return app
