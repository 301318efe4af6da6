"""What the store keeps for SSO: the sealed client secret, attempts and one-time codes taken
once, whom a claim names, and their expiry."""

import asyncio
import os
import stat
from datetime import timedelta
from unittest import mock

import pytest
import sqlalchemy as sa

from roster.domain.mode import Mode
from roster.domain.sso import SsoError, check, provider_name, s256, verifier_matches
from roster.jobs.imports import run_import
from roster.sealing import KEY_FILE, SealError, new_key, seal, unseal
from roster.settings import Settings
from roster.store import sso
from roster.store.db import writing
from roster.store.directory_reads import user_id_of
from roster.store.schema import sso_attempts, sso_codes
from tests.factories import csv_bytes, person


def test_a_secret_is_sealed_under_the_key_file_made_once(tmp_path):
    settings = Settings(data_dir=tmp_path / "one")
    sealed = seal(settings, "the client secret")
    assert "the client secret" not in sealed
    key_file = tmp_path / "one" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert unseal(Settings(data_dir=tmp_path / "one"), sealed) == "the client secret"
    # Another data folder is another key: the secret does not open there.
    with pytest.raises(SealError):
        unseal(Settings(data_dir=tmp_path / "two"), sealed)


def test_replicas_share_the_key_setting(tmp_path):
    key = new_key()
    sealed = seal(Settings(data_dir=tmp_path / "a", secret_key=key), "s3cret")
    assert unseal(Settings(data_dir=tmp_path / "b", secret_key=key), sealed) == "s3cret"
    assert not (tmp_path / "b" / KEY_FILE).exists()
    with pytest.raises(SealError):
        seal(Settings(data_dir=tmp_path / "c", secret_key="not a key"), "x")
    assert "s3cret" not in repr(Settings(secret_key=key)) and key not in repr(
        Settings(secret_key=key)
    )


def test_the_settings_rules():
    checked = check(" https://login.example.com/t/v2.0/ ", " app ", "upn", False, ["", "a.b:/c"])
    assert (checked.issuer, checked.client_id, checked.redirect_uris) == (
        "https://login.example.com/t/v2.0", "app", ("a.b:/c",)
    )  # fmt: skip
    for issuer in ("http://login.example.com", "https://x.example/?a=1", "ftp://x"):
        with pytest.raises(SsoError, match="issuer"):
            check(issuer, "app", "email", True, [])
    for uri in ("javascript:alert(1)", "http://evil.example/cb", "https://x.example/#f", "app:/x"):
        with pytest.raises(SsoError, match="redirect URI"):
            check("https://login.example.com", "app", "email", True, [uri])
    with pytest.raises(SsoError, match="claim"):
        check("https://login.example.com", "app", "sub", True, [])
    assert check("http://localhost:9000", "a", "email", True, ["http://127.0.0.1:5/cb"])
    assert provider_name("https://login.microsoftonline.com/x/v2.0") == "Microsoft Entra ID"
    assert provider_name("https://acme.okta.com") == "Okta"
    verifier = "v" * 43
    assert verifier_matches(verifier, s256(verifier))
    assert not verifier_matches("w" * 43, s256(verifier))
    assert not verifier_matches("short", s256("short"))


async def _people(engine, tenant):
    rows = [
        person(1, CSV_EMAIL=f"jan@{tenant.slug}.example"),
        # Person 2's username is person 3's e-mail address.
        person(2, CSV_USERNAME=f"piet@{tenant.slug}.example",
               CSV_EMAIL=f"p2@{tenant.slug}.example"),
        person(3, CSV_EMAIL=f"PIET@{tenant.slug}.example"),
    ]  # fmt: skip
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t")


async def test_whom_a_claim_names(engine, tenant):
    await _people(engine, tenant)
    async with engine.connect() as conn:
        jan = await sso.person(conn, tenant.id, "email", f"JAN@{tenant.slug}.EXAMPLE")
        by_name = await sso.person(conn, tenant.id, "preferred_username", "USER000001")
        by_address = await sso.person(conn, tenant.id, "upn", f"jan@{tenant.slug}.example")
        username_is_no_email = await sso.person(conn, tenant.id, "email", "user000001")
        # One person's username, another's address: it names nobody rather than either.
        two = await sso.person(conn, tenant.id, "preferred_username", f"piet@{tenant.slug}.example")
        uid = await user_id_of(conn, tenant.id, "user000001")
    assert jan and by_name and by_address and jan.user_id == by_name.user_id == uid
    assert username_is_no_email is None and two is None


async def test_an_attempt_is_taken_once(engine, tenant):
    async with writing(engine) as conn:
        state = await sso.start(
            conn, tenant.id, "nonce", "sealed", "console", "browser", next_path="/users"
        )
    assert state.startswith(tenant.id.hex + ".")
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(sso_attempts.c.state_hash))).scalars().all()
    assert state not in stored and all(len(h) == 64 for h in stored)

    async def take():
        async with writing(engine) as conn:
            return await sso.take(conn, state)

    taken = await asyncio.gather(take(), take())
    assert sorted(a is None for a in taken) == [False, True]
    winner = next(a for a in taken if a)
    assert (winner.tenant_id, winner.client, winner.next_path) == (tenant.id, "console", "/users")
    async with writing(engine) as conn:
        assert await sso.take(conn, state) is None
        assert await sso.take(conn, "not even a state") is None


async def test_codes_and_attempts_expire_and_are_forgotten(engine, tenant):
    await _people(engine, tenant)
    async with writing(engine) as conn:
        uid = await user_id_of(conn, tenant.id, "user000001")
        code = await sso.issue_code(conn, tenant.id, uid, "a.b:/c", s256("v" * 43))
        state = await sso.start(conn, tenant.id, "n", "sealed", "app", "browser")
    later = sso.now() + timedelta(minutes=11)
    with mock.patch("roster.store.sso.now", return_value=later):
        async with writing(engine) as conn:
            assert await sso.redeem_code(conn, code) is None
            assert await sso.take(conn, state) is None
            assert await sso.forget_expired(conn) >= 2
    async with engine.connect() as conn:
        for table in (sso_attempts, sso_codes):
            left = await conn.execute(sa.select(table).where(table.c.tenant_id == tenant.id))
            assert left.first() is None


async def test_a_code_is_bound_to_its_organization(engine, tenant):
    await _people(engine, tenant)
    async with writing(engine) as conn:
        uid = await user_id_of(conn, tenant.id, "user000001")
        code = await sso.issue_code(conn, tenant.id, uid, "a.b:/c", s256("v" * 43))
        other = f"{os.urandom(16).hex()}.{code.split('.', 1)[1]}"  # the secret, another org
        assert await sso.redeem_code(conn, other) is None
        redeemed = await sso.redeem_code(conn, code)
        assert redeemed and (redeemed.tenant_id, redeemed.user_id) == (tenant.id, uid)
        assert await sso.redeem_code(conn, code) is None
