"""The app's per-address sign-in limits key an address exactly as the directory does, so a
variant spelling (a long s, full-width letters) counts against the same address."""

import httpx
import pytest

from roster.settings import Settings
from roster.web.app import create_app


@pytest.mark.parametrize("path", ["/app/v1/sign-in/token", "/app/v1/sign-in/code"])
@pytest.mark.parametrize("variant", ["ſhared@b.nl", "ＳＨＡＲＥＤ@b.nl", " SHARED@B.NL"])
async def test_a_variant_of_an_address_shares_its_limit(engine, tmp_path, path, variant):
    settings = Settings(data_dir=tmp_path / "v", app_sign_in_attempts_per_minute=3)
    app = create_app(engine, settings=settings)

    async def attempt(email: str, peer: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://roster") as client:
            body = {"email": email, "code": "1"} if path.endswith("token") else {"email": email}
            return (await client.post(path, json=body)).status_code

    for n in range(3):  # each from an address of its own: only the e-mail address's limit
        assert await attempt("shared@b.nl", f"10.0.0.{n + 1}") != 429
    assert await attempt(variant, "10.0.1.1") == 429
    await app.state.code_mail.drained()  # codes are mailed after the answers
