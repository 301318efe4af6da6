"""The Control Centre: the admin console, server-rendered (Jinja2), under `/`."""

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roster.web import NOSNIFF
from roster.web.console import (
    audit,
    auth,
    imports,
    integrations,
    scim_log,
    settings,
    sso_settings,
    uploads,
    users,
)
from roster.web.console.common import (
    COOKIE,
    CsrfFailed,
    NotAnAdmin,
    SignInRequired,
    csrf_token,
    page,
)

router = APIRouter(include_in_schema=False)
for part in (
    auth, users, uploads, imports, integrations, sso_settings, scim_log, audit, settings,
):  # fmt: skip
    router.include_router(part.router)

# Pages of the console load nothing from elsewhere and run no inline code; no site may frame them.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
API_PREFIXES = ("/scim/", "/app/", "/healthz", "/readyz", "/docs", "/openapi.json")
_API_HEADERS = (NOSNIFF,)
_PAGE_HEADERS = (
    *_API_HEADERS,
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/users", status_code=303)


def wants_html(request: Request) -> bool:
    """A browser on a console page, not an API client."""
    path = request.url.path
    return not path.startswith(API_PREFIXES) and "text/html" in request.headers.get("accept", "")


def problem_page(request: Request, status: int, detail: str) -> HTMLResponse:
    headings = {404: "Not found", 405: "Not allowed", 403: "Not allowed"}
    heading = headings.get(status, "Something went wrong" if status >= 500 else "Cannot do that")
    message = "There is no such page." if status == 404 else detail
    return page(request, "message.html", None, status, heading=heading, message=message)


def busy_page(request: Request, headers: dict[str, str]) -> HTMLResponse:
    """The database is unavailable (see store.db.Unavailable): say so, and that nothing of
    this request was saved."""
    response = page(
        request, "message.html", None, 503, heading="The directory is busy",
        message="The directory is busy with other work (a large import, for example) or cannot "
        "be reached just now. Nothing was changed. Try again in a moment.",
    )  # fmt: skip
    response.headers.update(headers)
    return response


class _SecurityHeaders:
    """nosniff on every response; the console's pages also get CSP, no framing, no referrer
    elsewhere, no caching. Plain ASGI: Starlette's BaseHTTPMiddleware runs each request in a
    task group of its own, which cost an API request more than its database work."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _API_HEADERS if scope["path"].startswith(API_PREFIXES) else _PAGE_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Mount the console on the app: pages, static files, headers, and its error pages."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_middleware(_SecurityHeaders)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, error: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)

    @app.exception_handler(NotAnAdmin)
    async def refused(request: Request, error: NotAnAdmin) -> Response:
        cookie = request.cookies.get(COOKIE, "")
        return page(request, "refused.html", None, 403, csrf=csrf_token(cookie))

    @app.exception_handler(CsrfFailed)
    async def stale(request: Request, error: CsrfFailed) -> Response:
        return page(
            request, "message.html", None, 403, heading="The form expired",
            message="That form was not sent from a current page of this console. Go back, "
            "reload the page and try again.",
        )  # fmt: skip
