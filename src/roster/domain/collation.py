"""The alphabetical order people expect: Çelik, Dubois, Köhler, Krüger, Schäfer, Schröder, Weiß.

A sort key is a value's place in the Unicode Collation Algorithm's order as bytes, so that
comparing two keys byte by byte (what SQLite does with a BLOB and PostgreSQL with a bytea, both
in an index) orders the values as people read them, the same on every database. The order is
ICU's root collation (the Unicode Collation Algorithm with CLDR's root order, for no language in
particular): letters by their base letter first (ß as ss; ø, æ and ł as DUCET places them),
accents next; case is left out, so "dubois" and "Dubois" are equal here and the caller breaks the
tie (the console's list by username).
"""

from collections.abc import Callable
from functools import cache, lru_cache

# The widest key stored (users.display_name_sort_key, users.department_sort_key). A value of up
# to the widest name any channel accepts (fields.Field.idp_max) in any script fits whole; only
# runs of compatibility characters that expand to many letters (U+FDFA is eighteen) are cut,
# and a key cut to its first bytes still sorts before every key its beginning sorts before.
SORT_KEY_WIDTH = 1024

# Keys are stored, and another ICU version may make other keys: pyproject.toml names the one
# version of pyicu-wheels (and so of ICU) the stored keys come from, and tests/domain/
# test_collation.py fails on another until a migration recomputes the keys.
ICU_VERSION = "77.1"


@cache
def _collator() -> Callable[[str], bytes]:
    """ICU's root collator at secondary strength (accents count, case does not), loaded by the
    first key asked for (a command that writes no user starts without it)."""
    import icu

    collator = icu.Collator.createInstance(icu.Locale.getRoot())
    collator.setStrength(icu.Collator.SECONDARY)
    return collator.getSortKey


def sort_key(value: str | None) -> bytes:
    """The key `value` sorts by. No value sorts as the empty text, before every other, so users
    without a department come first on every database (a NULL would come first on SQLite and
    last on PostgreSQL)."""
    return _collator()(value or "")[:SORT_KEY_WIDTH]


@lru_cache(maxsize=4096)
def shared_sort_key(value: str | None) -> bytes:
    """`sort_key` of a value many users share (a department): each distinct one is computed
    once, where names, nearly all different, would only fill the cache."""
    return sort_key(value)
