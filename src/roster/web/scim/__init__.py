"""The SCIM 2.0 service provider (RFC 7643, RFC 7644): plain Starlette routes, mounted at
/scim/v2. It needs none of FastAPI's parameter binding (it validates its bodies by the
directory's rules and answers in its own error format), and FastAPI's routing and dependency
solving cost a lookup more than its database work."""

import logging

from starlette.exceptions import HTTPException
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster.store.db import Unavailable, Unstorable
from roster.web import NOSNIFF, retry_later
from roster.web.scim import discovery, groups, root, users
from roster.web.scim.errors import ScimError, error_response

log = logging.getLogger("roster.web.scim")


def create_app() -> ASGIApp:
    """The SCIM API: its routes behind one layer that answers every failure in SCIM's error
    format. A bare router, not an application: under the main app's Mount it shares that app's
    state (engines, token cache, rate limiter), and two more middleware layers a request were
    a measurable share of a lookup."""
    return _ScimErrors(Router([*users.routes, *groups.routes, *root.routes, *discovery.routes]))


_NOSNIFF = (NOSNIFF[0].lower().encode(), NOSNIFF[1].encode())  # as ASGI carries headers


class _ScimErrors:
    """ScimError and HTTP errors (404 for an unknown path, 405) as RFC 7644 §3.12 bodies; a
    database that is busy or unreachable as 503 with Retry-After; a failure nobody foresaw is
    logged and answered with a SCIM 500, never a bare one. Every answer carries nosniff."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), _NOSNIFF]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ScimError as error:
            failure = error
        except HTTPException as error:
            headers = dict(error.headers or {})  # 405 names the allowed methods
            failure = ScimError(error.status_code, str(error.detail), headers=headers)
        except Unavailable as error:
            # Identity providers back off on a 503 with Retry-After instead of counting a
            # failure.
            headers = retry_later(log, scope.get("method", ""), scope.get("path", ""), error)
            failure = ScimError(
                503, "the directory is busy or unreachable; retry later", headers=headers
            )
        except Unstorable:
            failure = ScimError(400, "a value contains a control character", "invalidValue")
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            failure = ScimError(500, "an unexpected error occurred")
        else:
            return
        if not started:
            await error_response(failure)(scope, receive, sending)
