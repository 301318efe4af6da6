"""store.one_user: a SCIM create is one path that decides in the store (a new user, a returning
one restored, or a Clash naming the field), and a unique index's refusal is the store's Clash,
never a driver's error, on both databases."""

import asyncio

import pytest
import sqlalchemy as sa

from roster.domain.plan import Addition, Plan, Removal, new_user
from roster.store import directory, directory_reads, one_user
from roster.store.db import Clash, typed_clashes, writing
from roster.store.prepared import DirectReads, DirectWrites
from roster.store.schema import users


def _addition(tenant_slug: str, login: str, email: str | None = None) -> Addition:
    values = new_user(
        {
            "username": login,
            "first_name": "Ada",
            "surname": "Lovelace",
            "display_name": "Ada Lovelace",
            "email": email or f"{login}@{tenant_slug}.example",
        }
    )
    return Addition(None, values, managed_by="scim")


async def test_a_create_adds_restores_or_names_the_field_taken(engine, tenant):
    writes, reads = DirectWrites(engine), DirectReads(engine)
    try:
        created = await one_user.create(
            writes, tenant.id, _addition(tenant.slug, "ada"), channel="scim", actor="token t"
        )
        assert not created.restored and created.row["username"] == "ada"
        found = await one_user.by_username(reads, tenant.id, "ADA")
        assert found is not None and found["id"] == created.row["id"]
        assert await one_user.by_id(reads, tenant.id, created.row["id"]) == found

        with pytest.raises(Clash) as taken:  # the same username, another address
            await one_user.create(
                writes,
                tenant.id,
                _addition(tenant.slug, "Ada", f"other@{tenant.slug}.example"),
                channel="scim",
                actor="token t",
            )
        assert taken.value.field == "username"
        with pytest.raises(Clash) as taken:  # another username, the same address
            await one_user.create(
                writes,
                tenant.id,
                _addition(tenant.slug, "grace", f"ada@{tenant.slug}.example"),
                channel="scim",
                actor="token t",
            )
        assert taken.value.field == "email"

        async with one_user.transaction(writes) as conn:
            row = await one_user.locked(conn, tenant.id, created.row["id"])
            assert row is not None
            plan = Plan(removed=[Removal(directory_reads.current_of(row))])
            await directory.apply(conn, tenant.id, plan, channel="scim", actor="token t")
        assert await one_user.by_id(reads, tenant.id, created.row["id"]) is None

        back = await one_user.create(
            writes, tenant.id, _addition(tenant.slug, "ada"), channel="scim", actor="token t"
        )
        assert back.restored and back.row["id"] == created.row["id"]
        assert back.row["removed_at"] is None
    finally:
        await writes.close()
        await reads.close()


async def test_a_unique_index_refusal_is_a_clash_and_no_other_refusal_is(engine, tenant):
    """What a value a concurrent writer took looks like to the store's callers: Clash, its
    field unknown, out of the rolled-back transaction. Another constraint's refusal is a fault,
    left as it is."""
    writes = DirectWrites(engine)
    try:
        first = await one_user.create(
            writes, tenant.id, _addition(tenant.slug, "first"), channel="scim", actor="t"
        )
        second = await one_user.create(
            writes, tenant.id, _addition(tenant.slug, "second"), channel="scim", actor="t"
        )
    finally:
        await writes.close()
    mine = users.update().where(users.c.tenant_id == tenant.id, users.c.id == second.row["id"])
    with pytest.raises(Clash) as refused, typed_clashes():
        async with writing(engine) as conn:
            await conn.execute(mine.values(username_key=first.row["username_key"]))
    assert refused.value.field is None
    with pytest.raises(sa.exc.IntegrityError), typed_clashes():
        async with writing(engine) as conn:
            await conn.execute(mine.values(username=None))
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(users).where(users.c.id == second.row["id"]))).one()
    assert (stored.username, stored.username_key) == ("second", second.row["username_key"])


async def test_creates_racing_to_restore_one_user_restore_it_once_and_the_rest_clash(
    engine, tenant
):
    """An identity provider retrying a create sends it again before the first answer: one
    restores the returning user, the others find the username taken (never a fault)."""
    writes, reads = DirectWrites(engine), DirectReads(engine)
    try:
        for round_number in range(5):
            login = f"returning{round_number}"
            made = await one_user.create(
                writes, tenant.id, _addition(tenant.slug, login), channel="scim", actor="t"
            )
            async with one_user.transaction(writes) as conn:
                row = await one_user.locked(conn, tenant.id, made.row["id"])
                plan = Plan(removed=[Removal(directory_reads.current_of(row))])
                await directory.apply(conn, tenant.id, plan, channel="scim", actor="t")

            async def again(login: str = login) -> object:
                try:
                    return await one_user.create(
                        writes, tenant.id, _addition(tenant.slug, login), channel="scim", actor="t"
                    )
                except Clash as clash:
                    return clash

            outcomes = await asyncio.gather(*(again() for _ in range(4)))
            restored = [o for o in outcomes if isinstance(o, one_user.Created)]
            assert len(restored) == 1 and restored[0].restored, outcomes
            assert all(o.field == "username" for o in outcomes if isinstance(o, Clash)), outcomes
            found = await one_user.by_username(reads, tenant.id, login)
            assert found is not None and found["id"] == made.row["id"]
    finally:
        await writes.close()
        await reads.close()
