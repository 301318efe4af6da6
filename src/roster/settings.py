"""One typed Settings object; nothing else reads the environment."""

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

PREFIX = "ROSTER_"

# Problems an import keeps and shows (its report, preview, error report CSV, CLI output, the
# drop box's report); every import also keeps how many it found in all.
MAX_REPORTED_PROBLEMS = 1000

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(addresses: str) -> list[IPNetwork]:
    """A setting's comma-separated addresses and networks (validated by Settings) as networks;
    host bits are dropped (`10.0.0.5/24` is 10.0.0.0/24)."""
    items = (i.strip() for i in addresses.split(","))
    return [ipaddress.ip_network(i, strict=False) for i in items if i]


class Settings(BaseModel):
    """Every setting, from `ROSTER_<NAME>` (any case) unless given; pydantic converts the text.
    A plain model: pydantic-settings loads dotenv and its cloud sources at every start."""

    model_config = ConfigDict(extra="ignore")

    data_dir: Path = Path("var")
    database_url: str = ""
    # Every connection one process opens to PostgreSQL (SQLAlchemy's and the per-request reads
    # and writes share one pool): ten lets nine replicas fit PostgreSQL's default
    # max_connections (100) beside an administrator's session.
    database_connections: int = Field(default=10, ge=4)  # leases, and 3 for SQLAlchemy
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    sftp_host: str = "127.0.0.1"
    sftp_port: int = Field(default=2222, ge=1, le=65535)
    max_import_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    max_reported_problems: int = Field(default=MAX_REPORTED_PROBLEMS, ge=1)
    # Request bodies: the console's forms and the app API, SCIM (room for a group PUT of tens of
    # thousands of members), and the operations of one SCIM PATCH. A CSV upload may be as large
    # as max_import_bytes.
    max_form_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_scim_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    scim_max_patch_operations: int = Field(default=1000, ge=1)
    # An SFTP account's folder holds at most this many files and bytes at its top (uploads
    # waiting for a pickup); each file is at most max_import_bytes.
    dropbox_max_files: int = Field(default=20, ge=1)
    dropbox_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    # Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses or networks,
    # comma-separated ("10.0.0.5,192.168.1.0/24"). Empty: the connecting address is the client.
    trusted_proxies: str = ""
    # /metrics (Prometheus): on unless turned off; it answers loopback and these addresses or
    # networks (a scraper's), comma-separated, and is a 404 to everyone else (its series name
    # organizations).
    metrics: bool = True
    metrics_allowed: str = ""
    # How often `roster serve` looks for due pickups, and how long after an upload completes
    # a process-on-upload pickup waits (so a client's follow-up rename or re-upload settles).
    scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    pickup_settle_seconds: float = Field(default=5.0, ge=0)
    # Failed SFTP logins allowed per client address and per username within a minute.
    sftp_failed_logins_per_minute: int = Field(default=10, ge=1)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object a line (roster.logs)
    # Console cookies are sent over HTTPS only; turn off only to try the console over plain
    # HTTP on another machine (browsers treat http://localhost as secure already).
    console_secure_cookies: bool = True
    # Where the app's sign-in codes are sent: smtp://user:password@host:587 (STARTTLS when the
    # server offers it) or smtps://...:465; empty writes them to ROSTER_DATA_DIR/mail/outbox.jsonl.
    smtp_url: str = ""
    mail_from: str = "Roster <roster@localhost>"
    # The Control Centre's address as admins reach it (behind a proxy: the proxy's), for the
    # links in the notices mailed to them; empty: http://HTTP_HOST:HTTP_PORT.
    public_url: str = ""
    # The key that seals secrets Roster must use again (an OpenID provider's client secret):
    # a Fernet key (`roster sso key` prints a new one). Empty: ROSTER_DATA_DIR/secret.key,
    # made on first use. Replicas must share it, so with several set it here (or share the file).
    secret_key: SecretStr = SecretStr("")
    # Outgoing calls to an organization's OpenID provider (discovery, keys, the token endpoint):
    # seconds before giving up, and the largest answer read.
    sso_timeout_seconds: float = Field(default=10.0, gt=0)
    sso_max_response_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Whether an organization's provider may be at a private address (loopback, the local
    # network, link-local, cloud metadata): off, so that an admin cannot make Roster call into
    # its own network; on only to try a provider on this host or for one inside your network.
    sso_private_addresses: bool = False
    # SCIM requests of an organization refused (4xx, 5xx) within an hour before its admins are
    # told, once that hour.
    notice_scim_refusals_per_hour: int = Field(default=20, ge=1)
    # App sign-in requests (codes asked for, codes entered) per client address and per e-mail
    # address within a minute.
    app_sign_in_attempts_per_minute: int = Field(default=10, ge=1)
    # Failed console sign-ins per client address and per account within a minute.
    console_failed_logins_per_minute: int = Field(default=10, ge=1)
    # SCIM requests a second per token (bursts of twice that) before 429 with Retry-After;
    # Entra ID's gallery checklist asks for at least 25 a second per tenant.
    scim_rate_limit: float = Field(default=200.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, given: Any) -> Any:
        """The environment's values under the ones given."""
        if not isinstance(given, dict):
            return given
        found = {
            name[len(PREFIX) :].lower(): value
            for name, value in os.environ.items()
            if name.upper().startswith(PREFIX)
        }
        return found | given

    @field_validator("trusted_proxies", "metrics_allowed")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for item in filter(None, (i.strip() for i in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @property
    def proxies(self) -> list[str]:
        """trusted_proxies as a list of networks in their canonical form (`10.0.0.5/24` is
        10.0.0.0/24: uvicorn trusts nothing of a network written with host bits)."""
        return [str(network) for network in networks(self.trusted_proxies)]

    @property
    def metrics_networks(self) -> list[IPNetwork]:
        """metrics_allowed as networks (an address is a network of one)."""
        return networks(self.metrics_allowed)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
            raise ValueError(f"{value!r} is not an http:// or https:// address")
        return value.rstrip("/")

    @property
    def console_url(self) -> str:
        """The Control Centre's address for links sent out, without a trailing slash."""
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @property
    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL, from what a person would naturally write."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'roster.db'}"
        return async_url(url)


def async_url(url: str) -> str:
    """The SQLAlchemy URL of a database URL as a person writes it: PostgreSQL through asyncpg
    (a URL naming psycopg, Roster's earlier driver, included, so existing configurations keep
    working), SQLite through aiosqlite."""
    for plain, driver in (
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("postgresql+psycopg2://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            url = driver + url[len(plain) :]
            break
    if url.startswith("postgresql+asyncpg://"):
        # libpq's sslmode is asyncpg's ssl (same values: disable, prefer, require, verify-full).
        url = re.sub(r"([?&])sslmode=", r"\1ssl=", url)
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
