"""HTTP: the application factory and its parts."""

# Every response tells browsers not to guess its type: the console's (web.console) and the
# SCIM API's (web.scim), each added by its own layer.
NOSNIFF = ("X-Content-Type-Options", "nosniff")

SCIM_PREFIX = "/scim/v2"


def is_scim(path: str) -> bool:
    """Whether a path (below the root path) is the SCIM API's."""
    return path == SCIM_PREFIX or path.startswith(SCIM_PREFIX + "/")
