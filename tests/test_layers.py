"""Only the store speaks SQL: no module of Roster outside `roster/store/` imports SQLAlchemy
(its asyncio engine and connection types aside, for annotations), a database driver, or the
store's tables, so nothing above the store builds a statement or meets a driver's error."""

import ast
from collections.abc import Iterator
from pathlib import Path

import roster

ROOT = Path(roster.__file__).parent
STORE = ROOT / "store"
DRIVERS = ("asyncpg", "psycopg", "psycopg2", "aiosqlite", "sqlite3")
# The engine and connection a handler is given (store.db makes them) may be named in types.
TYPES_ONLY = "sqlalchemy.ext.asyncio"
TABLES = "roster.store.schema"


def _outside_store() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        if STORE not in path.parents:
            yield path


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module an import statement names, with its line (`from a import b` names `a` and
    `a.b`, since b may be a module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _forbidden(module: str) -> bool:
    top = module.split(".")[0]
    if top in DRIVERS:
        return True
    if top == "sqlalchemy":
        return module != TYPES_ONLY and not module.startswith(TYPES_ONLY + ".")
    return module == TABLES or module.startswith(TABLES + ".")


def test_nothing_outside_the_store_imports_sqlalchemy_a_driver_or_the_tables() -> None:
    found = [
        f"{path.relative_to(ROOT.parent)}:{line}: {module}"
        for path in _outside_store()
        for line, module in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if _forbidden(module)
    ]
    assert found == []


def test_the_check_sees_what_it_forbids() -> None:
    """The rule itself: the imports it refuses, and the one it allows."""
    source = """
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
import asyncpg
from psycopg import sql
import sqlite3
from aiosqlite import connect
from roster.store.schema import users
from roster.store import schema
from sqlalchemy.ext.asyncio import AsyncEngine
from roster.store import directory
"""
    refused = [module for _, module in _imported(ast.parse(source)) if _forbidden(module)]
    assert refused == [
        "sqlalchemy",
        "sqlalchemy",
        "sqlalchemy.select",
        "sqlalchemy.exc",
        "sqlalchemy.exc.IntegrityError",
        "asyncpg",
        "psycopg",
        "psycopg.sql",
        "sqlite3",
        "aiosqlite",
        "aiosqlite.connect",
        "roster.store.schema",
        "roster.store.schema.users",
        "roster.store.schema",
    ]
