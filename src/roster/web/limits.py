"""Request bodies are bounded before any work: a declared Content-Length over the limit is
answered 413 at once, and a body sent in chunks is counted as it arrives; the handler reading
past the limit is stopped and the client gets the same 413, in its channel's format (SCIM's
error schema, the app API's JSON, a short page for the console). Nothing of the body is echoed."""

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster.settings import Settings
from roster.web import NOSNIFF, is_scim
from roster.web.scim.errors import ScimError, error_response

UPLOAD_PATH = "/uploads"  # the console's Add user list
MULTIPART_ROOM = 64 * 1024  # the form's other fields and part headers around an upload


@dataclass(frozen=True)
class BodyLimits:
    form: int
    scim: int
    upload: int

    @classmethod
    def of(cls, settings: Settings) -> "BodyLimits":
        return cls(
            settings.max_form_bytes,
            settings.max_scim_bytes,
            settings.max_import_bytes + MULTIPART_ROOM,
        )

    def of_path(self, path: str) -> int:
        """The most a request to `path` (below the root path) may send."""
        if is_scim(path):
            return self.scim
        return self.upload if path == UPLOAD_PATH else self.form


class BodyTooLarge(HTTPException):
    """Raised to the handler that reads past the limit; every error layer passes an
    HTTPException on quietly, and the bounded app answers in its place."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


def too_large(path: str, limit: int) -> Response:
    detail = f"the request body is larger than the limit of {limit:,} bytes"
    if is_scim(path):
        return error_response(ScimError(413, detail))
    if path.startswith("/app/"):
        return JSONResponse({"detail": detail}, 413, {NOSNIFF[0]: NOSNIFF[1]})
    return PlainTextResponse(
        f"Too large: {detail}. Go back and send less.", 413, {NOSNIFF[0]: NOSNIFF[1]}
    )


def _declared(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def bounded(
    app: ASGIApp, limit: int, path: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run `app` on a request whose body may be at most `limit` bytes (`path` picks the format
    of the refusal)."""
    declared = _declared(scope)
    if declared is not None and declared > limit:
        await too_large(path, limit)(scope, receive, send)
        return
    received, exceeded, started = 0, False, False

    async def counting() -> Message:
        nonlocal received, exceeded
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                exceeded = True
                raise BodyTooLarge
        return message

    async def sending(message: Message) -> None:
        nonlocal started
        if not exceeded:
            started = True
            await send(message)

    try:
        await app(scope, counting, sending)
    except BodyTooLarge:
        pass
    except Exception:
        if not exceeded:
            raise
    if exceeded and not started:
        await too_large(path, limit)(scope, receive, send)
