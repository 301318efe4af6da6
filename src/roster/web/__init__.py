"""HTTP: the application factory and its parts."""

import logging

from roster.store.db import RETRY_AFTER_SECONDS, Unavailable

# Every response tells browsers not to guess its type: the console's (web.console) and the
# SCIM API's (web.scim), each added by its own layer.
NOSNIFF = ("X-Content-Type-Options", "nosniff")

SCIM_PREFIX = "/scim/v2"


def is_scim(path: str) -> bool:
    """Whether a path (below the root path) is the SCIM API's."""
    return path == SCIM_PREFIX or path.startswith(SCIM_PREFIX + "/")


def retry_later(log: logging.Logger, method: str, path: str, error: Unavailable) -> dict[str, str]:
    """A database that is unavailable, logged as one line (no traceback: the request was sound,
    and the message names the driver's error, never the statement's values), and the header
    that tells the client when to come back. Every channel answers it with a 503."""
    log.warning("database unavailable on %s %s: %s", method, path, error)
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}
