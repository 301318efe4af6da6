"""The rules of signing in through an organization's OpenID Connect provider, without I/O: what
a provider's settings may be, which claim names the user, the app's redirect URIs and PKCE."""

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# Which claim of the ID token names the person: `email` is matched to the directory's e-mail
# address; `preferred_username` (Entra ID's sign-in name, Okta's login) and `upn` (Entra ID's
# userPrincipalName, in tokens when configured) to the username or the e-mail address.
CLAIMS = ("email", "preferred_username", "upn")
# Whom the claim is compared with, by claim.
MATCHES = {
    "email": ("email",),
    "preferred_username": ("username", "email"),
    "upn": ("username", "email"),
}
MAX_REDIRECT_URIS = 10
# RFC 7636: a verifier is 43 to 128 unreserved characters; its S256 challenge 43 base64url ones.
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
REFUSED = "Sign-in was not possible."
# The errors a provider may answer with (RFC 6749 4.1.2.1, OpenID Connect Core 3.1.2.6): the
# audit trail names one of these, never text a visitor wrote into the address.
PROVIDER_ERRORS = frozenset({
    "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
    "invalid_scope", "server_error", "temporarily_unavailable", "interaction_required",
    "login_required", "account_selection_required", "consent_required",
    "invalid_request_uri", "invalid_request_object", "request_not_supported",
    "request_uri_not_supported", "registration_not_supported",
})  # fmt: skip


class SsoError(ValueError):
    """A provider's setting that cannot be used, naming it."""


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    issuer: str
    client_id: str
    claim: str
    codes_allowed: bool
    redirect_uris: tuple[str, ...]


def check_issuer(issuer: str) -> str:
    """An issuer is an https URL without query or fragment (OpenID Connect Discovery); plain
    http only on loopback, for trying it out."""
    issuer = issuer.strip().rstrip("/")
    parts = urlsplit(issuer)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise SsoError("issuer: an https:// address (http:// only on localhost)")
    if not parts.hostname or parts.query or parts.fragment or len(issuer) > 500:
        raise SsoError("issuer: an address without ?query or #fragment, at most 500 characters")
    return issuer


def check_redirect_uri(uri: str) -> str:
    """An app's redirect URI (RFC 8252): a private-use scheme (`com.example.app:/callback`),
    an https address the app claims, or http on loopback; never a fragment."""
    uri = uri.strip()
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or len(uri) > 2000 or any(c.isspace() for c in uri):
        raise SsoError(f"redirect URI {uri!r}: a full URI without #fragment")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise SsoError(f"redirect URI {uri!r}: plain http only on loopback")
    if parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise SsoError(f"redirect URI {uri!r}: not a scheme an app receives")
    if parts.scheme != "https" and parts.scheme != "http" and "." not in parts.scheme:
        raise SsoError(
            f"redirect URI {uri!r}: a private-use scheme is a reversed domain (com.example.app)"
        )
    return uri


def check(
    issuer: str, client_id: str, claim: str, codes_allowed: bool, redirect_uris: list[str]
) -> ProviderSettings:
    client_id = client_id.strip()
    if not client_id or len(client_id) > 255 or any(c.isspace() for c in client_id):
        raise SsoError("client id: the application (client) id the provider shows")
    if claim not in CLAIMS:
        raise SsoError(f"claim: one of {', '.join(CLAIMS)}")
    uris = tuple(dict.fromkeys(check_redirect_uri(u) for u in redirect_uris if u.strip()))
    if len(uris) > MAX_REDIRECT_URIS:
        raise SsoError(f"redirect URIs: at most {MAX_REDIRECT_URIS}")
    return ProviderSettings(check_issuer(issuer), client_id, claim, codes_allowed, uris)


def s256(verifier: str) -> str:
    """RFC 7636's S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verifier_matches(verifier: str, challenge: str) -> bool:
    if not VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


def provider_name(issuer: str) -> str:
    """What the sign-in button calls the provider: the well-known ones by name, else its host."""
    host = urlsplit(issuer).hostname or issuer
    if host.endswith(("microsoftonline.com", "microsoftonline.us", "login.microsoft.com")):
        return "Microsoft Entra ID"
    if host.endswith((".okta.com", ".oktapreview.com", ".okta-emea.com")):
        return "Okta"
    return host
