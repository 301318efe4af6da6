"""Refresh tokens rotate: of two refreshes with one token exactly one gets new tokens, and a
replaced token used again later (a copy in other hands) ends its session."""

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from roster.store import sessions
from roster.store.clock import now
from roster.store.db import writing
from roster.store.schema import sessions as sessions_table
from roster.store.schema import spent_refresh_tokens
from roster.web.appapi import ACCESS, REFRESH
from tests.app.test_access import ME, addr, bearer, client, settings, sign_in, staff  # noqa: F401

REFRESH_PATH = "/app/v1/token/refresh"


async def _refresh_alone(engine, token: str):
    async with writing(engine) as conn:
        return await sessions.refresh(conn, token, ACCESS, REFRESH)


async def _after_the_race(engine, tenant) -> None:
    """As if the organization's last refreshes were longer ago than a race lasts."""
    async with writing(engine) as conn:
        await conn.execute(
            spent_refresh_tokens.update()
            .where(spent_refresh_tokens.c.tenant_id == tenant.id)
            .values(spent_at=now() - sessions.RACE - timedelta(seconds=1))
        )


async def test_of_two_refreshes_at_once_exactly_one_wins(client, settings, staff):  # noqa: F811
    tokens = await sign_in(client, settings, addr(staff, 1))
    body = {"refresh_token": tokens["refresh_token"]}
    answers = await asyncio.gather(*(client.post(REFRESH_PATH, json=body) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 401]
    winner = next(a.json() for a in answers if a.status_code == 200)
    # The loser of a race ends nothing: the winner's tokens work.
    assert (await client.get(ME, headers=bearer(winner))).status_code == 200
    again = await client.post(REFRESH_PATH, json={"refresh_token": winner["refresh_token"]})
    assert again.status_code == 200
    assert (await client.get(ME, headers=bearer(again.json()))).status_code == 200


async def test_the_store_lets_one_of_many_refreshes_win(client, settings, staff, engine):  # noqa: F811
    tokens = await sign_in(client, settings, addr(staff, 2))
    won = await asyncio.gather(*(_refresh_alone(engine, tokens["refresh_token"]) for _ in range(5)))
    assert len([w for w in won if w is not None]) == 1


async def test_a_refresh_waiting_for_another_to_commit_loses(client, settings, staff, engine):  # noqa: F811
    tokens = await sign_in(client, settings, addr(staff, 3))
    async with writing(engine) as conn:
        first = await sessions.refresh(conn, tokens["refresh_token"], ACCESS, REFRESH)
        # Waits for the row (PostgreSQL) or the write lock (SQLite) until this one commits.
        second = asyncio.create_task(_refresh_alone(engine, tokens["refresh_token"]))
        await asyncio.sleep(0.3)
        assert not second.done()
    assert first is not None
    assert await second is None


async def test_a_replaced_refresh_token_used_again_ends_the_session(
    client,  # noqa: F811
    settings,  # noqa: F811
    staff,  # noqa: F811
    engine,
):
    tokens = await sign_in(client, settings, addr(staff, 4))
    renewed = await client.post(REFRESH_PATH, json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200
    current = renewed.json()
    await _after_the_race(engine, staff)
    replay = await client.post(REFRESH_PATH, json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    # The session is over for whoever holds its current tokens too.
    assert (await client.get(ME, headers=bearer(current))).status_code == 401
    late = await client.post(REFRESH_PATH, json={"refresh_token": current["refresh_token"]})
    assert late.status_code == 401
    async with engine.connect() as conn:
        revoked = await conn.execute(
            sa.select(sessions_table.c.revoked_at).where(
                sessions_table.c.tenant_id == staff.id,
                sessions_table.c.refresh_hash.is_not(None),
            )
        )
        assert [r.revoked_at is not None for r in revoked] == [True]


async def test_a_token_spent_refreshes_ago_ends_the_session_too(
    client,  # noqa: F811
    settings,  # noqa: F811
    staff,  # noqa: F811
    engine,
):
    """Someone with a copy refreshed twice before the app came back with its own old token:
    that token ends the session the copy kept alive."""
    tokens = await sign_in(client, settings, addr(staff, 6))
    first = await client.post(REFRESH_PATH, json={"refresh_token": tokens["refresh_token"]})
    second = await client.post(REFRESH_PATH, json={"refresh_token": first.json()["refresh_token"]})
    current = second.json()
    await _after_the_race(engine, staff)
    replay = await client.post(REFRESH_PATH, json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert (await client.get(ME, headers=bearer(current))).status_code == 401


async def test_spent_tokens_are_forgotten_once_no_copy_could_be_used(
    client,  # noqa: F811
    settings,  # noqa: F811
    staff,  # noqa: F811
    engine,
):
    tokens = await sign_in(client, settings, addr(staff, 7))
    await client.post(REFRESH_PATH, json={"refresh_token": tokens["refresh_token"]})
    async with writing(engine) as conn:
        await conn.execute(
            spent_refresh_tokens.update()
            .where(spent_refresh_tokens.c.tenant_id == staff.id)
            .values(spent_at=now() - sessions.REFRESH - timedelta(minutes=1))
        )
        assert await sessions.forget_spent(conn) >= 1
    async with engine.connect() as conn:
        left = await conn.execute(
            sa.select(sa.func.count()).where(spent_refresh_tokens.c.tenant_id == staff.id)
        )
        assert left.scalar_one() == 0


async def test_an_unknown_refresh_token_ends_nothing(client, settings, staff, engine):  # noqa: F811
    tokens = await sign_in(client, settings, addr(staff, 5))
    wrong = tokens["refresh_token"][:-4] + (
        "AAAA" if not tokens["refresh_token"].endswith("AAAA") else "BBBB"
    )
    assert (await client.post(REFRESH_PATH, json={"refresh_token": wrong})).status_code == 401
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200
