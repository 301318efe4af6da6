"""The `roster` command: thin wrappers that parse arguments, call jobs and store, and print.
One module a group of commands; each imports what it needs when it runs (see cli.common)."""

import gc

import typer

from roster.cli.access import mail_app, sessions_app
from roster.cli.admins import admin_app
from roster.cli.dropbox import sftp_app, sync_app
from roster.cli.import_history import imports_app
from roster.cli.scim import scim_app
from roster.cli.service import db_app, purge, serve
from roster.cli.sso import sso_app
from roster.cli.tenants import tenant_app
from roster.cli.users import import_file, template, users_app

app = typer.Typer(
    help="Roster: the user directory behind your workplace app.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(tenant_app, name="tenant")
app.command("import")(import_file)
app.command("template")(template)
app.add_typer(users_app, name="users")
app.add_typer(imports_app, name="imports")
app.add_typer(db_app, name="db")
app.add_typer(scim_app, name="scim")
app.add_typer(sftp_app, name="sftp")
app.add_typer(admin_app, name="admin")
app.add_typer(sessions_app, name="sessions")
app.add_typer(mail_app, name="mail")
app.add_typer(sync_app, name="sync")
app.add_typer(sso_app, name="sso")
app.command("purge")(purge)
app.command("serve")(serve)


def main() -> None:
    try:
        app()
    finally:
        # The process ends here: the interpreter's last collection would go over everything the
        # command built (an import's hundreds of thousands of objects) only to free it.
        gc.freeze()
