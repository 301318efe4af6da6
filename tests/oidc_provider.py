"""A real OpenID provider on loopback for the SSO tests: oidc-provider-mock (Authlib's
authorization server in Flask) in a thread of the test process, and what a person's browser
does there (chooses who signs in, is sent back)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from oidc_provider_mock import run_server_in_thread

from tests.conftest import free_port


@dataclass
class OpenIdProvider:
    issuer: str

    def person(self, sub: str, **claims: str) -> None:
        """The provider's account `sub` and the claims its ID tokens carry."""
        response = httpx.put(f"{self.issuer}/users/{sub}", json=claims)
        assert response.status_code == 204, response.text

    def sign_in(self, authorize_url: str, sub: str) -> str:
        """The person signs in at the provider as `sub`: where the provider sends the browser
        back (the redirect URL with `code` and `state`)."""
        assert authorize_url.startswith(f"{self.issuer}/"), authorize_url
        response = httpx.post(authorize_url, data={"sub": sub})
        assert response.status_code == 302, response.text
        return response.headers["location"]


@contextmanager
def running(token_lifetime: timedelta = timedelta(hours=1)) -> Iterator[OpenIdProvider]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with run_server_in_thread(port=free_port(), access_token_max_age=token_lifetime) as server:
        yield OpenIdProvider(f"http://localhost:{server.server_port}")


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
