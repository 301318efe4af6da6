"""The alphabetical order of names and departments (the console's list sorts by these keys)."""

import random

import icu
from hypothesis import given, settings
from hypothesis import strategies as st

from roster.domain import collation
from roster.domain.collation import SORT_KEY_WIDTH, shared_sort_key, sort_key

ISSUE_ORDER = ["Çelik", "Dubois", "Köhler", "Krüger", "Schäfer", "Schröder", "Weiß"]


def _sorted(values: list[str]) -> list[str]:
    return sorted(values, key=sort_key)


def test_the_order_people_expect_not_code_points():
    shuffled = random.Random(15).sample(ISSUE_ORDER, len(ISSUE_ORDER))
    assert _sorted(shuffled) == ISSUE_ORDER
    assert sorted(ISSUE_ORDER) != ISSUE_ORDER  # by code point: Krüger before Köhler, Çelik last
    mixed = ["weiß", "KRÜGER", "çelik", "Schröder", "DUBOIS", "köhler", "schäfer"]
    assert _sorted(mixed) == ["çelik", "DUBOIS", "köhler", "KRÜGER", "schäfer", "Schröder", "weiß"]


def test_case_is_left_out_and_accents_come_after_letters():
    assert sort_key("Dubois") == sort_key("dubois") == sort_key("DUBOIS")
    assert _sorted(["Cem", "Çelik", "Celik"]) == ["Celik", "Çelik", "Cem"]
    assert _sorted(["Müller", "Mueller", "Muller", "Mulder"]) == [
        "Mueller", "Mulder", "Muller", "Müller",
    ]  # fmt: skip


def test_sharp_s_stroked_and_joined_letters_sort_by_their_base_letters():
    assert _sorted(["Weit", "Weiß", "Weis", "Weiss"]) == ["Weis", "Weiss", "Weiß", "Weit"]
    assert _sorted(["Oerlikon", "Ødegaard", "Odegaard"]) == ["Odegaard", "Ødegaard", "Oerlikon"]
    assert _sorted(["Lukaszewski", "Łukasz", "Lukasz"]) == ["Lukasz", "Łukasz", "Lukaszewski"]
    assert _sorted(["Aeby", "Æbi", "Aebi", "Az"]) == ["Aebi", "Æbi", "Aeby", "Az"]


def test_names_in_other_scripts_and_with_punctuation_have_a_place():
    names = ["Zoë", "van 't Hoff", "Jansen, Jan", "Σωκράτης", "Ivanov", "Иванов", "李", "محمد"]
    ordered = _sorted(names)
    assert ordered.index("Jansen, Jan") < ordered.index("van 't Hoff") < ordered.index("Zoë")
    assert ordered.index("Zoë") < ordered.index("Σωκράτης") < ordered.index("Иванов")


def test_no_value_sorts_first():
    assert sort_key(None) == sort_key("")
    assert sort_key("") < sort_key("\u0301") < sort_key("-") < sort_key("0") < sort_key("A")


def test_keys_fit_their_columns():
    """The widest name of any channel, in any script, keeps its whole key; only runs of
    characters that expand to many letters are cut, and a cut key keeps its place."""
    for letter in ("a", "é", "中", "한", "😀", "\ufb03"):
        assert len(sort_key(letter * 256)) < SORT_KEY_WIDTH, letter
    expanding = "\ufdfa" * 256
    assert len(sort_key(expanding)) == SORT_KEY_WIDTH
    assert sort_key(expanding + "a") <= sort_key(expanding + "b")
    assert sort_key(expanding) > sort_key("\ufdfa" * 10 + "a") > sort_key("Zoë")


def test_a_shared_value_has_the_same_key():
    for value in ("Finance", "Öffentlichkeit", None, ""):
        assert shared_sort_key(value) == sort_key(value)


def test_the_keys_are_those_of_the_icu_they_were_stored_by():
    """Keys are stored: another ICU (pyicu-wheels' version in pyproject.toml) may make other
    keys, and needs a migration that remakes them before this constant follows it."""
    assert icu.ICU_VERSION == collation.ICU_VERSION


LETTERS = "aAäÄeEéÉoOöØøsSßcCçÇlLłŁ æÆ-',"
WORDS = st.text(alphabet=LETTERS, max_size=12) | st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Co", "Cn")), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(WORDS, WORDS)
def test_bytes_compare_as_the_collation_does(first, second):
    """Two keys compared byte by byte (as SQLite and PostgreSQL compare them) order their
    values as ICU's own comparison at the same strength does."""
    collator = icu.Collator.createInstance(icu.Locale.getRoot())
    collator.setStrength(icu.Collator.SECONDARY)
    a, b = sort_key(first), sort_key(second)
    assert (a > b) - (a < b) == collator.compare(first, second)
