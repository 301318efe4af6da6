"""How `roster serve` logs: lines of text, or one JSON object a line (ROSTER_LOG_FORMAT=json)
for a log collector, each naming the request and the organization it was logged for."""

import json
import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from roster.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
ORGANIZATION: ContextVar[str | None] = ContextVar("organization", default=None)  # its id

_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id(given: bytes | None) -> str:
    """The id of a request: the one its client or proxy sent in X-Request-ID when it is a
    plain token of at most 64 characters (so logs of both sides line up), else a new one."""
    if given is not None:
        text = given.decode("latin-1")
        if _GIVEN_ID.fullmatch(text):
            return text
    return secrets.token_hex(8)


class _Context(logging.Filter):
    """Puts the request's id and organization on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.organization = ORGANIZATION.get()
        return True


class JsonLines(logging.Formatter):
    """A record as one JSON object: time (UTC), level, logger, event (the message),
    organization, request_id, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            "organization": getattr(record, "organization", None),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(settings: Settings) -> None:
    """The root logger's one handler (stderr), at ROSTER_LOG_LEVEL, in ROSTER_LOG_FORMAT."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context())
    json_lines = settings.log_format == "json"
    handler.setFormatter(JsonLines() if json_lines else logging.Formatter(TEXT))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
