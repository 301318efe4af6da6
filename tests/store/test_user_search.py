"""The console's user list query: search, filters, sort and pages."""

import sqlalchemy as sa

from roster.domain.mode import Mode
from roster.jobs import people
from roster.jobs.imports import run_import
from roster.store import user_search
from roster.store.user_search import Query
from tests.factories import csv_bytes, person


async def _names(engine, tenant, query: Query) -> list[str]:
    async with engine.connect() as conn:
        rows, total = await user_search.search(conn, tenant.id, query)
    assert total >= len(rows)
    return [r["username"] for r in rows]


async def test_search_filters_sort_and_pages(engine, tenant):
    rows = [
        person(1, CSV_SURNAME="Öztürk", CSV_DEPARTMENT="Finance", CSV_EHBO="1"),
        person(2, CSV_SURNAME="Zwanenburg", CSV_DEPARTMENT="IT_Support", CSV_EHBO="0"),
        person(3, CSV_SURNAME="de Vries", CSV_DEPARTMENT="100% Sales", CSV_EHBO="1"),
        *[person(n, CSV_DEPARTMENT="Logistiek") for n in range(10, 70)],
    ]
    rows = [r | {"CSV_EMAIL": f"{r['CSV_USERNAME']}@{tenant.slug}.example"} for r in rows]
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t")
    assert await _names(engine, tenant, Query(text="ÖZTÜRK")) == ["user000001"]  # any case
    assert await _names(engine, tenant, Query(text="it_")) == ["user000002"]
    assert await _names(engine, tenant, Query(text="100%")) == ["user000003"]  # % is a letter
    assert await _names(engine, tenant, Query(text="_")) == ["user000002"]
    assert await _names(engine, tenant, Query(text=f"user000003@{tenant.slug}")) == ["user000003"]
    assert await _names(engine, tenant, Query(first_aider=True, text="user00000")) == [
        "user000001",
        "user000003",
    ]
    first = await _names(engine, tenant, Query(sort="department"))
    assert first[:3] == ["user000003", "user000001", "user000002"]
    second = await _names(engine, tenant, Query(page=2))
    assert len(second) == 13 and second[-1] == "user000069"
    # A change made later is found by its new value, not its old one.
    async with engine.connect() as conn:
        found, _ = await user_search.search(conn, tenant.id, Query(text="user000002@"))
    await people.change(
        engine, tenant.id, found[0]["id"], {"surname": "Bakker"}, channel="console", actor="t"
    )
    assert await _names(engine, tenant, Query(text="bakker")) == ["user000002"]
    assert await _names(engine, tenant, Query(text="zwanenburg")) == []


# The order: by base letter first, accents next, case left out (code points put Krüger
# before Köhler and Çelik last). (username, display name, department)
PEOPLE = [
    ("user000001", "schröder", "Einkauf"),
    ("user000002", "Çelik", "Élevage"),
    ("user000003", "KRÜGER", "Öffentlichkeit"),
    ("user000004", "Dubois", "Ärztlicher Dienst"),
    ("user000005", "Köhler", "einkauf"),
    ("user000006", "Schäfer", ""),
    ("user000007", "Weiß", "Zentrale"),
    ("user000008", "dubois", "Logistik"),
]
BY_NAME = [  # Çelik, Dubois, dubois (the tie by username), Köhler, KRÜGER, Schäfer, ...
    "user000002", "user000004", "user000008", "user000005", "user000003", "user000006",
    "user000001", "user000007",
]  # fmt: skip
BY_DEPARTMENT = [  # none, Ärztlicher Dienst, Einkauf, einkauf, Élevage, Logistik, Ö..., Z...
    "user000006", "user000004", "user000001", "user000005", "user000002", "user000008",
    "user000003", "user000007",
]  # fmt: skip


async def _import_people(engine, tenant) -> None:
    rows = [
        person(int(username[-1]), CSV_DISPLAYNAME=name, CSV_DEPARTMENT=department)
        | {"CSV_EMAIL": f"{username}@{tenant.slug}.example"}
        for username, name, department in PEOPLE
    ]
    await run_import(engine, tenant.slug, csv_bytes(rows), mode=Mode.ADD, channel="cli", actor="t")


async def test_names_and_departments_sort_as_people_expect(engine, tenant):
    await _import_people(engine, tenant)
    assert await _names(engine, tenant, Query(sort="name")) == BY_NAME
    assert await _names(engine, tenant, Query(sort="name", descending=True)) == BY_NAME[::-1]
    assert await _names(engine, tenant, Query(sort="department")) == BY_DEPARTMENT
    assert (
        await _names(engine, tenant, Query(sort="department", descending=True))
        == (BY_DEPARTMENT[::-1])
    )
    # A search keeps the order.
    assert await _names(engine, tenant, Query(text="dubois", sort="name")) == [
        "user000004",
        "user000008",
    ]


async def _plan(engine, tenant, query: Query) -> str:
    """The database's plan of the list's page query (the statement `search` runs)."""
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "ORDER BY" in statement:
            statements.append((statement, parameters))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with engine.connect() as conn:
            await user_search.search(conn, tenant.id, query)
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", seen)
    ((statement, parameters),) = statements
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(row[-1] for row in plan)
        # Scans of the whole table and sorts made as dear as PostgreSQL makes them: what is
        # left is a plan that reads the rows in order from an index, if one can.
        await conn.exec_driver_sql("SET enable_seqscan = off")
        await conn.exec_driver_sql("SET enable_sort = off")
        plan = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(row[0] for row in plan)


async def test_a_sorted_page_is_read_in_index_order(engine, tenant):
    """Sorted by name or department, either way, the page is read from the sort's index in its
    order, ties by username included: no sort of the organization's users first."""
    await _import_people(engine, tenant)
    for sort, index in (
        ("name", "ix_users_tenant_id_display_name_sort_key"),
        ("department", "ix_users_tenant_id_department_sort_key"),
    ):
        for descending in (False, True):
            plan = await _plan(engine, tenant, Query(sort=sort, descending=descending, page=2))
            assert index in plan, plan
            if engine.dialect.name == "sqlite":
                assert "TEMP B-TREE" not in plan, plan
            else:
                assert "Index Scan" in plan and "Sort" not in plan, plan
