"""Talking to an organization's OpenID Connect provider: discovery, its signing keys, the token
endpoint, and the ID token's validation (joserfc; no JOSE by hand).

Every call is async on httpx with a timeout and a bound on the answer, so a slow or huge
provider delays only its own sign-ins. Discovery documents and key sets are kept a few minutes
per issuer; a token signed by a key not in the kept set fetches the set again once."""

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

CACHE_SECONDS = 300.0
LEEWAY_SECONDS = 60  # clocks of Roster and the provider may differ this much
# Signature algorithms accepted for ID tokens: asymmetric ones only (never `none`, never HMAC
# with the client secret as key).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
SCOPE = "openid email profile"


class ProviderError(Exception):
    """The provider could not be used (unreachable, slow, an answer that is no answer)."""


class TokenRefused(Exception):
    """An ID token that does not prove who signed in; `reason` names the check it failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    auth_methods: tuple[str, ...]


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Provider:
    """Outgoing calls to providers, with their discovery documents and key sets kept briefly;
    one per process (the app's state)."""

    def __init__(
        self, timeout: float, max_bytes: int, *, private_addresses: bool = False,
        clock: Any = time.monotonic,
    ) -> None:  # fmt: skip
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._private_addresses = private_addresses
        self._clock = clock
        self._kept: dict[tuple[str, str], tuple[float, Any]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def _public(self, url: str) -> None:
        """Refuse a host that resolves to anything but public addresses (ROSTER_SSO_PRIVATE_
        ADDRESSES): an organization's admin names the provider, and must not reach Roster's
        own network through it."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname or "", port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise ProviderError(f"{url}: the host is not found") from None
        for *_, address in found:
            ip = ipaddress.ip_address(address[0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if not ip.is_global:
                raise ProviderError(f"{url}: {ip} is a private address")

    async def _json(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        if not self._private_addresses:
            await self._public(url)
        try:
            # httpx's timeout bounds each read; this bounds the whole answer (a slow drip).
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(method, url, **kwargs) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise ProviderError(f"{url}: the answer is larger than allowed")
                    status = response.status_code
        except (httpx.HTTPError, TimeoutError) as error:
            raise ProviderError(f"{url}: {type(error).__name__}") from None
        try:
            return status, orjson.loads(body)
        except ValueError:
            raise ProviderError(f"{url}: the answer is not JSON (HTTP {status})") from None

    async def _cached(self, kind: str, url: str, fresh: bool = False) -> Any:
        key = (kind, url)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one fetch however many sign-ins ask at once
            kept = self._kept.get(key)
            if kept and not fresh and self._clock() - kept[0] < CACHE_SECONDS:
                return kept[1]
            status, found = await self._json("GET", url)
            if status != 200 or not isinstance(found, dict):
                raise ProviderError(f"{url}: HTTP {status}")
            self._kept[key] = (self._clock(), found)
            return found

    async def discover(self, issuer: str) -> Discovery:
        found = await self._cached("discovery", f"{issuer}/.well-known/openid-configuration")
        try:
            discovery = Discovery(
                str(found["issuer"]),
                str(found["authorization_endpoint"]),
                str(found["token_endpoint"]),
                str(found["jwks_uri"]),
                tuple(found.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])),
            )
        except KeyError as error:
            raise ProviderError(f"{issuer}: discovery lacks {error}") from None
        # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for.
        if discovery.issuer.rstrip("/") != issuer.rstrip("/"):
            raise ProviderError(f"{issuer}: discovery names another issuer")
        # The client secret and codes go to these: https, as the issuer is (http only on a
        # loopback issuer's own host, for trying it out), never elsewhere in plain text.
        home = urlsplit(issuer)
        for url in (discovery.authorization_endpoint, discovery.token_endpoint,
                    discovery.jwks_uri):  # fmt: skip
            parts = urlsplit(url)
            if parts.scheme != "https" and not (
                home.scheme == "http" and parts.scheme == "http" and parts.hostname == home.hostname
            ):
                raise ProviderError(f"{issuer}: discovery names a plain-text endpoint {url}")
        return discovery

    async def keys(self, discovery: Discovery, fresh: bool = False) -> KeySet:
        found = await self._cached("jwks", discovery.jwks_uri, fresh)
        try:
            return KeySet.import_key_set(found)
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise ProviderError(f"{discovery.jwks_uri}: {error}") from None

    @staticmethod
    def authorization_url(
        discovery: Discovery, client_id: str, redirect_uri: str, state: str, nonce: str,
        challenge: str,
    ) -> str:  # fmt: skip
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in discovery.authorization_endpoint else "?"
        return f"{discovery.authorization_endpoint}{separator}{query}"

    async def redeem(
        self, discovery: Discovery, client_id: str, secret: str, code: str, redirect_uri: str,
        verifier: str,
    ) -> str:  # fmt: skip
        """The ID token the token endpoint gives for an authorization code."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        auth: httpx.BasicAuth | None = None
        if "client_secret_basic" in discovery.auth_methods or not discovery.auth_methods:
            auth = httpx.BasicAuth(client_id, secret)
        else:
            form |= {"client_id": client_id, "client_secret": secret}
        status, answer = await self._json("POST", discovery.token_endpoint, data=form, auth=auth)
        if status != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise TokenRefused(f"token endpoint refused the code ({error or status})")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRefused("no ID token in the token endpoint's answer")
        return id_token

    async def validate(
        self, discovery: Discovery, client_id: str, id_token: str, nonce_hash: str
    ) -> dict[str, Any]:
        """The claims of an ID token, once its signature (by the provider's keys), issuer,
        audience, expiry and nonce hold; TokenRefused naming the first check that fails."""
        try:
            token = _decode(id_token, await self.keys(discovery))
        except TokenRefused:  # the provider may have rolled its keys since they were kept
            token = _decode(id_token, await self.keys(discovery, fresh=True))
        return check_claims(token.claims, discovery.issuer, client_id, nonce_hash)


def _decode(id_token: str, keys: KeySet) -> Any:
    try:
        return jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError, KeyError, TypeError) as error:
        raise TokenRefused(f"signature ({type(error).__name__})") from None


def check_claims(
    claims: dict[str, Any], issuer: str, client_id: str, nonce_hash: str, now: int | None = None
) -> dict[str, Any]:
    """OpenID Connect Core 3.1.3.7 on a signed token's claims."""
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise TokenRefused("expired") from None
    except JoseError as error:
        claim = getattr(error, "claim", None) or type(error).__name__
        raise TokenRefused(
            {"aud": "audience", "iss": "issuer"}.get(claim, f"claim {claim}")
        ) from None
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise TokenRefused("audience")
    nonce = claims["nonce"]
    if not isinstance(nonce, str) or not hmac.compare_digest(digest(nonce), nonce_hash):
        raise TokenRefused("nonce")
    return claims
