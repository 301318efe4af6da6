"""The SCIM 2.0 service provider (RFC 7643, RFC 7644): plain Starlette routes, mounted at
/scim/v2. It needs none of FastAPI's parameter binding (it validates its bodies by the
directory's rules and answers in its own error format), and FastAPI's routing and dependency
solving cost a lookup more than its database work."""

import logging
import time
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster import metrics
from roster.jobs.provisioning_log import ProvisioningLog
from roster.store.db import Clash, Unavailable, Unstorable
from roster.web import NOSNIFF, retry_later
from roster.web.scim import discovery, groups, root, users
from roster.web.scim.errors import ScimError, error_response, taken
from roster.web.scim.note import Note, note_in

log = logging.getLogger("roster.web.scim")


ROUTES = [*users.routes, *groups.routes, *root.routes, *discovery.routes]


def create_app(provisioning_log: ProvisioningLog, counted: bool = True) -> ASGIApp:
    """The SCIM API: its routes behind one layer that answers every failure in SCIM's error
    format. A bare router, not an application: under the main app's Mount it shares that app's
    state (engines, token cache, rate limiter) without the middleware layers an application
    adds to every request. `counted`: each request counted for /metrics."""
    return _Logged(_ScimErrors(Router(ROUTES)), provisioning_log, counted)


PATH_LONGEST = 2000  # characters of a path and query the log keeps


class _Logged:
    """Every request of an organization (its token verified) becomes a provisioning log row
    once its answer is sent: when, the token's name, method, path, status, the user or group,
    the outcome, warnings and duration, from the request's Note. Never a header or the body.
    The row is handed to the app's ProvisioningLog, which writes rows in batches. Every request
    is also counted by its organization and outcome (roster_scim_requests_total)."""

    def __init__(self, app: ASGIApp, provisioning_log: ProvisioningLog, counted: bool) -> None:
        self.app, self.log, self.counted = app, provisioning_log, counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        note = Note()
        scope["state"] = {**scope.get("state", {}), "scim_note": note}  # this request's own
        await self.app(scope, receive, send)  # _ScimErrors notes the status it sends
        status = note.status
        if self.counted and status:
            metrics.scim_request(note.organization, scope["method"], status)
        if note.tenant_id is None or note.token is None:
            if status == 401:
                log.info("SCIM %s %s: no valid token (401)", scope["method"], scope["path"])
            return
        path = scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        self.log.add(
            {
                "tenant_id": note.tenant_id,
                "at": datetime.now(UTC),
                "token": note.token,
                "method": scope["method"],
                "path": path[:PATH_LONGEST],
                "status": status,
                "resource_id": note.resource_id,
                "user_name": note.name[:1100] if note.name else None,
                "detail": note.outcome or ("answered" if status < 400 else "refused"),
                "warnings": "\n".join(note.warnings),
                "duration_ms": (time.perf_counter() - started) * 1000,
            }
        )


_NOSNIFF = (NOSNIFF[0].lower().encode(), NOSNIFF[1].encode())  # as ASGI carries headers


class _ScimErrors:
    """ScimError and HTTP errors (404 for an unknown path, 405) as RFC 7644 §3.12 bodies; a
    database that is busy or unreachable as 503 with Retry-After; a value another resource
    holds (the store's Clash) as 409 uniqueness; a failure nobody foresaw is logged and
    answered with a SCIM 500, never a bare one. Every answer carries nosniff."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), _NOSNIFF]
                note_in(scope).status = message["status"]
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
        except Clash as clash:  # a unique value another resource holds
            failure = taken(clash)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            failure = ScimError(500, "an unexpected error occurred")
        else:
            return
        note = note_in(scope)
        note.outcome = f"{'failed' if failure.status >= 500 else 'refused'}: {failure.detail}"
        if not started:
            await error_response(failure)(scope, receive, sending)
