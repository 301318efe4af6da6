"""The SCIM 2.0 service provider (RFC 7643, RFC 7644): a Starlette application of its own,
mounted at /scim/v2. It needs none of FastAPI's parameter binding (it validates its bodies by
the directory's rules and answers in its own error format), and FastAPI's routing and
dependency solving cost a lookup more than its database work."""

import logging

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster.web.scim import discovery, groups, root, users
from roster.web.scim.errors import ScimError, error_response

log = logging.getLogger("roster.web.scim")


def create_app(state: State) -> Starlette:
    """The SCIM API, sharing `state` (engines, token cache, rate limiter) with the main app."""

    async def scim_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ScimError)
        return error_response(error)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        headers = dict(error.headers or {})  # 405 names the allowed methods
        return error_response(ScimError(error.status_code, str(error.detail), headers=headers))

    app = Starlette(
        routes=[*users.routes, *groups.routes, *root.routes, *discovery.routes],
        middleware=[Middleware(_Unexpected)],
        exception_handlers={ScimError: scim_error, HTTPException: http_error},
    )
    app.state = state
    return app


class _Unexpected:
    """A failure nobody foresaw is logged and answered with a SCIM error body, never a bare
    500 (Starlette's own handler would also re-raise it to the server, which logs it again)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                failure = error_response(ScimError(500, "an unexpected error occurred"))
                await failure(scope, receive, send)
