"""Tables (SQLAlchemy Core).

Every table carries tenant_id and every key of a tenant's data leads with it, so the schema can be
distributed by tenant later without a rewrite. Case-insensitive uniqueness is kept by normalized
columns (username_key, email_key) with ordinary indexes, never by lower() scans.
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every database (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        last: list[tuple[datetime | None, str | None]] = [(None, None)]

        def as_text(value: datetime | None) -> str | None:
            # SQLAlchemy's own SQLite text for a datetime ("2026-03-02 12:00:00.000000", UTC) at
            # a fifth of its cost (every log row and imported user binds some). The last one is
            # kept: an import binds one time to every row it writes.
            if value is None:
                return None
            seen, text = last[0]
            if value is seen:
                return text
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            text = value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # no "+00:00"
            last[0] = (value, text)
            return text

        return as_text


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def only_where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both databases: it holds only the rows that match."""
    clause = sa.text(condition)
    return {"sqlite_where": clause, "postgresql_where": clause}


def tenant_fk() -> sa.Column[Any]:
    return sa.Column(
        "tenant_id",
        sa.Uuid,
        sa.ForeignKey("tenants.tenant_id", ondelete="CASCADE"),
        nullable=False,
    )


tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("tenant_id", sa.Uuid, primary_key=True),
    sa.Column("slug", sa.String(63), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    # The deletion guard: a replace that removes more than guard_percent of the users AND more
    # than guard_min_users users is held for approval.
    sa.Column("guard_percent", sa.Integer, nullable=False, server_default="10"),
    sa.Column("guard_min_users", sa.Integer, nullable=False, server_default="5"),
    sa.Column("retention_days", sa.Integer, nullable=False, server_default="30"),
    # Which SCIM attribute feeds which directory field ({field: SCIM path, or null for off});
    # empty means the default mapping (roster.domain.mapping.DEFAULT).
    sa.Column("scim_mapping", JSONType, nullable=False, server_default="{}"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The kinds of notice its admins are not mailed (roster.domain.notices.KINDS).
    sa.Column("notices_off", JSONType, nullable=False, server_default="[]"),
)

users = sa.Table(
    "users",
    metadata,
    tenant_fk(),
    sa.Column("id", sa.Uuid, nullable=False),  # time-ordered (store/ids.py): inserts append
    # Widths: the longest value of any channel (fields.Field.idp_max; keys: fields.KEY_WIDTH).
    sa.Column("username", sa.String(256), nullable=False),
    sa.Column("username_key", sa.String(1024), nullable=False),
    sa.Column("first_name", sa.String(64), nullable=False),
    sa.Column("surname", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("title", sa.String(128)),
    sa.Column("phone", sa.String(64)),
    sa.Column("mobile", sa.String(64)),
    sa.Column("department", sa.String(64)),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    # The console's search (directory.search_text): the searched fields casefolded.
    sa.Column("search_text", sa.Text, nullable=False, server_default=""),
    # What the console's list sorts names and departments by (domain.collation.sort_key):
    # bytes, compared byte by byte on both databases, index and ORDER BY alike. Every write
    # sets them (directory._stored); nullable only because a column of bytes has no default
    # both databases accept, which adding a required column to a table of users needs.
    sa.Column("display_name_sort_key", sa.LargeBinary),
    sa.Column("department_sort_key", sa.LargeBinary),
    sa.Column("first_aider", sa.Boolean),
    sa.Column("emergency_responder", sa.Boolean),
    sa.Column("profile_photo", sa.String(2048)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("external_id", sa.String(255)),
    # Attributes an identity provider sends that the template has no field for, kept as sent
    # (the enterprise extension's employeeNumber and manager).
    sa.Column("extra", JSONType, nullable=False, server_default="{}"),
    sa.Column("managed_by", sa.String(10), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # Removed users stay (invisible) for the retention period, so an import can be undone and a
    # returning username gets its old identity back.
    sa.Column("removed_at", UTCDateTime),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.UniqueConstraint("tenant_id", "username_key"),
    sa.Index(
        "uq_users_present_email_key",
        "tenant_id",
        "email_key",
        unique=True,
        **only_where("removed_at IS NULL"),
    ),
    # Only users with an external id, the ones looked up by it: a file's users write nothing here.
    sa.Index(
        "ix_users_tenant_id_external_id",
        "tenant_id",
        "external_id",
        **only_where("external_id IS NOT NULL"),
    ),
    # Whole: present users are counted and read through it (the console's list, the directory),
    # and removed ones purged.
    sa.Index("ix_users_tenant_id_removed_at", "tenant_id", "removed_at"),
    # The app's sign-in starts from an e-mail address alone, before the organization is known.
    sa.Index("ix_users_email_key", "email_key"),
    # The console's list sorts by these, ties by username: a page is read in index order.
    sa.Index(
        "ix_users_tenant_id_display_name_sort_key",
        "tenant_id",
        "display_name_sort_key",
        "username_key",
    ),
    sa.Index(
        "ix_users_tenant_id_department_sort_key", "tenant_id", "department_sort_key", "username_key"
    ),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    tenant_fk(),
    sa.Column("id", sa.Uuid, nullable=False),  # time-ordered (store/ids.py): inserts append
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),  # console, csv, sftp, scim, cli
    sa.Column("actor", sa.String(320), nullable=False),  # who (an e-mail), or which token
    sa.Column("action", sa.String(20), nullable=False),  # added, updated, removed, restored...
    sa.Column("user_id", sa.Uuid),
    sa.Column("import_id", sa.Uuid),
    sa.Column("user_version", sa.Integer),  # the user's version after the change (for undo)
    sa.Column("before", JSONType),
    sa.Column("after", JSONType),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index("ix_audit_events_tenant_id_user_id_at", "tenant_id", "user_id", "at"),
    # An import's events (its undo); events of no import are left out.
    sa.Index(
        "ix_audit_events_tenant_id_import_id",
        "tenant_id",
        "import_id",
        **only_where("import_id IS NOT NULL"),
    ),
    # The log's order: an import's events share one time, so `id` orders them (keyset pages).
    sa.Index("ix_audit_events_tenant_id_at_id", "tenant_id", "at", "id"),
)

# What each SCIM request of an organization did, as its provisioning log shows it; never a
# token, a password or a body.
provisioning_log = sa.Table(
    "provisioning_log",
    metadata,
    tenant_fk(),
    # Numbered by the table in the order written (SQLite's rowid): a batch appends.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.Identity()),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("token", sa.String(200), nullable=False),  # the token's name
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("path", sa.String(2000), nullable=False),  # with the query (filters, not secrets)
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("resource_id", sa.String(100)),  # the user's or group's id
    sa.Column("user_name", sa.String(1100)),  # the userName, or the group's displayName
    sa.Column("detail", sa.Text, nullable=False),  # the outcome in words
    sa.Column("warnings", sa.Text, nullable=False),  # sentences, one a line
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_provisioning_log_tenant_id_at", "tenant_id", "at"),
    # The refused requests alone, which the admins' notices count an hour of (jobs/notices).
    sa.Index("ix_provisioning_log_refused", "tenant_id", "at", **only_where("status >= 400")),
    sqlite_autoincrement=True,  # a number is never given again, even after the newest went
)

imports = sa.Table(
    "imports",
    metadata,
    tenant_fk(),
    sa.Column("id", sa.Uuid, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),  # as audit_events.actor
    sa.Column("file_name", sa.String(500)),
    sa.Column("mode", sa.String(10), nullable=False),  # add, replace, undo
    sa.Column("status", sa.String(10), nullable=False),  # an ImportStatus (store/imports.py)
    sa.Column("counts", JSONType, nullable=False),
    sa.Column("report", JSONType, nullable=False),  # {"errors": [...], "warnings": [...]}
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index("ix_imports_tenant_id_created_at", "tenant_id", "created_at"),
    # Only held imports (a few at any time), counted across organizations on every scrape of
    # /metrics and listed for a drop box's approval.
    sa.Index("ix_imports_tenant_id_held", "tenant_id", **only_where("status = 'held'")),
)

sessions = sa.Table(
    "sessions",
    metadata,
    tenant_fk(),
    sa.Column("id", sa.Uuid, nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),  # SHA-256 of the random token
    # console (an admin's browser), console-2fa (password given, code not yet), app
    sa.Column("kind", sa.String(12), nullable=False, server_default="app"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    # The app's sessions also have a refresh token; refreshing replaces both tokens.
    sa.Column("refresh_hash", sa.String(64)),
    sa.Column("refresh_expires_at", UTCDateTime),
    # A console session's two-step key offered on the account page, until the admin confirms it:
    # kept here so that the key turned on is always one Roster made, never one a browser sent.
    sa.Column("totp_offered", sa.String(32)),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.UniqueConstraint("tenant_id", "token_hash"),
    sa.UniqueConstraint("tenant_id", "refresh_hash"),
    sa.Index("ix_sessions_tenant_id_user_id", "tenant_id", "user_id"),
)

# Refresh tokens a refresh replaced, kept as long as a refresh token lives: one presented again is
# a copy in other hands (a replay), and ends the session it belonged to.
spent_refresh_tokens = sa.Table(
    "spent_refresh_tokens",
    metadata,
    tenant_fk(),
    sa.Column("token_hash", sa.String(64), nullable=False),  # SHA-256 of the replaced token
    sa.Column("session_id", sa.Uuid, nullable=False),
    sa.Column("spent_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "token_hash"),
    sa.Index("ix_spent_refresh_tokens_spent_at", "spent_at"),
)

scim_tokens = sa.Table(
    "scim_tokens",
    metadata,
    tenant_fk(),
    sa.Column("id", sa.Uuid, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    # The token carries its organization's id, so lookups lead with tenant_id; only the
    # SHA-256 of its secret is stored.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.UniqueConstraint("tenant_id", "secret_hash"),
)

groups = sa.Table(
    "groups",
    metadata,
    tenant_fk(),
    sa.Column("id", sa.Uuid, nullable=False),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("display_name_key", sa.String(1024), nullable=False),
    sa.Column("external_id", sa.String(255)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.UniqueConstraint("tenant_id", "display_name_key"),
)

group_members = sa.Table(
    "group_members",
    metadata,
    tenant_fk(),
    sa.Column("group_id", sa.Uuid, nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "group_id", "user_id"),
    sa.ForeignKeyConstraint(
        ["tenant_id", "group_id"], ["groups.tenant_id", "groups.id"], ondelete="CASCADE"
    ),
    sa.ForeignKeyConstraint(
        ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
    ),
    sa.Index("ix_group_members_tenant_id_user_id", "tenant_id", "user_id"),
)

# One SFTP drop box per organization (its account's username is the organization's slug).
dropboxes = sa.Table(
    "dropboxes",
    metadata,
    tenant_fk(),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.String(200)),  # argon2
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("daily_time", sa.String(5), nullable=False),  # HH:MM in the organization's zone
    sa.Column("process_on_upload", sa.Boolean, nullable=False),
    sa.Column("next_daily_at", UTCDateTime, nullable=False),
    sa.Column("upload_pickup_at", UTCDateTime),  # a pickup an upload asked for
    sa.Column("last_upload_at", UTCDateTime),
    sa.Column("last_pickup_at", UTCDateTime),
    sa.Column("last_import_id", sa.Uuid),
    sa.Column("last_sha256", sa.String(64)),  # the last pickup's file (to skip a repeat)
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id"),
)

dropbox_keys = sa.Table(
    "dropbox_keys",
    metadata,
    tenant_fk(),
    sa.Column("fingerprint", sa.String(100), nullable=False),  # SHA256:...
    sa.Column("public_key", sa.Text, nullable=False),  # OpenSSH format
    sa.Column("comment", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "fingerprint"),
)

# How an admin signs in to the console (admins are directory users with role "admin").
admin_credentials = sa.Table(
    "admin_credentials",
    metadata,
    tenant_fk(),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2
    sa.Column("totp_secret", sa.String(64)),  # base32; set once the admin confirmed a code
    sa.Column("totp_last_step", sa.BigInteger),  # the time step of the last code accepted
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "user_id"),
    sa.ForeignKeyConstraint(
        ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
    ),
)

# One-time codes the app's users sign in with, sent by e-mail; only their hash is kept.
sign_in_codes = sa.Table(
    "sign_in_codes",
    metadata,
    tenant_fk(),
    sa.Column("id", sa.Uuid, nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    # A code is entered with an e-mail address alone, before the organization is known.
    sa.Index("ix_sign_in_codes_email_key_created_at", "email_key", "created_at"),
)

# Each notice mailed to an organization's admins, once per event: `key` names the event (an
# import's id, the hour of SCIM refusals, the last upload a drop box waits after).
notices = sa.Table(
    "notices",
    metadata,
    tenant_fk(),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.Column("recipients", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "kind", "key"),
)

# Each organization's OpenID Connect provider (at most one): its client secret sealed with the
# deployment's key (roster.sealing), since the token endpoint needs it back.
sso_providers = sa.Table(
    "sso_providers",
    metadata,
    tenant_fk(),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("issuer", sa.String(500), nullable=False),
    sa.Column("client_id", sa.String(255), nullable=False),
    sa.Column("client_secret_sealed", sa.Text, nullable=False),
    sa.Column("claim", sa.String(30), nullable=False),  # email, preferred_username, upn
    sa.Column("codes_allowed", sa.Boolean, nullable=False),  # e-mailed codes beside it
    sa.Column("redirect_uris", JSONType, nullable=False),  # the app's, exact matches
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id"),
)

# Sign-ins sent to the provider and not yet back: kept in the database so that any replica can
# finish one. The state (which the provider hands back) is stored as its SHA-256, the nonce too
# (compared with the ID token's, hashed); the PKCE verifier toward the provider is sealed.
sso_attempts = sa.Table(
    "sso_attempts",
    metadata,
    tenant_fk(),
    sa.Column("state_hash", sa.String(64), nullable=False),
    sa.Column("nonce_hash", sa.String(64), nullable=False),
    sa.Column("verifier_sealed", sa.Text, nullable=False),
    sa.Column("client", sa.String(10), nullable=False),  # app, console
    sa.Column("redirect_uri", sa.String(2000)),  # the app's
    sa.Column("code_challenge", sa.String(128)),  # the app's, S256
    sa.Column("app_state", sa.String(500)),  # the app's own state, handed back to it
    sa.Column("next_path", sa.String(2000)),  # the console's page after sign-in
    sa.Column("browser_hash", sa.String(64), nullable=False),  # the browser that began it
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.PrimaryKeyConstraint("tenant_id", "state_hash"),
    sa.Index("ix_sso_attempts_expires_at", "expires_at"),
)

# The one-time codes an app exchanges (with its PKCE verifier) for tokens after an SSO sign-in:
# stored as their SHA-256, single use, bound to the user, the redirect URI and the challenge.
sso_codes = sa.Table(
    "sso_codes",
    metadata,
    tenant_fk(),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("user_id", sa.Uuid, nullable=False),
    sa.Column("redirect_uri", sa.String(2000), nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
    sa.PrimaryKeyConstraint("tenant_id", "code_hash"),
    sa.Index("ix_sso_codes_expires_at", "expires_at"),
)
