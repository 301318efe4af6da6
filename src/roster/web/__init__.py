"""HTTP: the application factory and its parts."""

# Every response tells browsers not to guess its type: the console's (web.console) and the
# SCIM API's (web.scim), each added by its own layer.
NOSNIFF = ("X-Content-Type-Options", "nosniff")
