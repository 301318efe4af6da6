"""Problems that cannot multiply: a value many rows share costs one short message a row, and an
import keeps a bounded number of problems with the totals, so its report stays a small multiple
of its file whatever the file holds."""

import csv
import io
import uuid
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roster.domain import csvfile
from roster.domain.error_report import HEADER, NOT_LISTED, error_report
from roster.domain.issues import Issue, Problems
from roster.domain.mode import Mode
from roster.domain.plan import Current, new_user, reconcile
from tests.factories import csv_bytes, people, person

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGE_AT_MOST = 100  # characters in a duplicate's message, however many rows share the value


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_ten_thousand_rows_with_one_email_cost_one_short_message_each() -> None:
    rows = [person(n, CSV_EMAIL="placeholder@example.com") for n in range(10_000)]
    data = csv_bytes(rows)
    parsed = csvfile.parse(data)
    assert len(parsed.errors) == 10_000 and not any(r.valid for r in parsed.rows)
    assert {i.code for i in parsed.errors} == {"duplicate_email"}
    assert max(len(i.message) for i in parsed.errors) <= MESSAGE_AT_MOST
    by_row = {i.row: i.message for i in parsed.errors}
    assert by_row[2] == ("CSV_EMAIL is the same as on row 3: 10,000 rows share this e-mail address")
    assert by_row[10_001] == (
        "CSV_EMAIL is the same as on row 2: 10,000 rows share this e-mail address"
    )
    # Even kept whole, the report is a small multiple of the file.
    whole = Problems.of(parsed.issues, len(parsed.issues))
    assert len(error_report(whole).encode()) <= 2 * len(data)
    plan = reconcile(parsed, [], Mode.REPLACE)
    assert plan.invalid == 10_000 and not plan.added


@FAST
@given(
    st.integers(min_value=2, max_value=400),
    st.integers(min_value=0, max_value=50),
    st.sampled_from(["CSV_EMAIL", "CSV_USERNAME"]),
    st.randoms(use_true_random=False),
)
def test_each_row_of_a_repeated_value_names_the_first_other_row_and_the_count(
    sharing: int, distinct: int, column: str, random
) -> None:
    rows = people(distinct + sharing)
    shared = set(random.sample(range(len(rows)), sharing))
    value = "Same.Person@example.com" if column == "CSV_EMAIL" else "same.person"
    for n in shared:
        # Case differs from row to row: still the same value.
        rows[n][column] = value.upper() if n % 2 else value
    parsed = csvfile.parse(csv_bytes(rows))
    involved = sorted(n + 2 for n in shared)  # spreadsheet rows: the header is row 1
    found = {i.row: i for i in parsed.errors}
    assert sorted(found) == involved and len(parsed.errors) == sharing
    what = "e-mail address" if column == "CSV_EMAIL" else "username"
    for row, issue in found.items():
        other = involved[1] if row == involved[0] else involved[0]
        assert issue.column == column
        assert issue.message == (
            f"{column} is the same as on row {other}: {sharing:,} rows share this {what}"
        )
    assert sum(not r.valid for r in parsed.rows) == sharing


def current(n: int, email: str) -> Current:
    values = new_user({"username": f"user{n:06d}", "email": email, "display_name": f"U {n}"})
    return Current(uuid.uuid4(), values, "csv", 1, datetime.now(UTC))


def test_rows_whose_addresses_belong_to_others_cost_one_message_each() -> None:
    count = 3_000
    # Every row names an existing user with the next user's address.
    users = [current(n, f"user{n:06d}@example.com") for n in range(count)]
    rows = [person(n, CSV_EMAIL=f"user{(n + 1) % count:06d}@example.com") for n in range(count)]
    plan = reconcile(csvfile.parse(csv_bytes(rows)), users, Mode.ADD)
    assert [i.code for i in plan.errors] == ["email_taken"] * count
    assert plan.invalid == count and not plan.updated
    assert max(len(i.message) for i in plan.errors) <= 2 * MESSAGE_AT_MOST


issues = st.builds(
    Issue,
    st.none() | st.integers(min_value=1, max_value=50),
    st.none() | st.sampled_from(["CSV_EMAIL", "CSV_USERNAME"]),
    st.sampled_from(["duplicate_email", "required", "unquoted_fields"]),
    st.text(max_size=20),
    st.sampled_from(["error", "warning"]),
)


@FAST
@given(st.lists(issues, max_size=60), st.integers(min_value=1, max_value=40))
def test_problems_keep_at_most_the_bound_with_the_totals(found: list[Issue], limit: int) -> None:
    found.sort(key=lambda i: (i.row or 0, i.severity))  # as a plan orders them
    kept = Problems.of(found, limit)
    assert kept.shown == min(limit, len(found))
    assert kept.error_total == sum(i.severity == "error" for i in found)
    assert kept.warning_total == sum(i.severity == "warning" for i in found)
    assert kept.truncated == (len(found) > limit)
    assert all(i.severity == "error" for i in kept.errors)
    assert all(i.severity == "warning" for i in kept.warnings)

    # The file's own problems come first, then errors, then warnings; each in the plan's order.
    def rank(issue: Issue) -> tuple[bool, bool]:
        return issue.row is not None, issue.severity != "error"

    kept_ids = {id(i) for i in kept.issues}
    left = [i for i in found if id(i) not in kept_ids]
    if left:
        assert min(map(rank, left)) >= max(map(rank, kept.issues))
    for severity, listed in (("error", kept.errors), ("warning", kept.warnings)):
        in_order = [i for i in found if id(i) in kept_ids and i.severity == severity]
        assert [id(i) for i in in_order] == [id(i) for i in listed]
    assert Problems.stored(kept.as_json()) == kept


def test_the_error_report_lists_the_kept_problems_and_says_how_many_in_all() -> None:
    parsed = csvfile.parse(csv_bytes([person(n, CSV_EMAIL="a@example.com") for n in range(5000)]))
    kept = Problems.of(parsed.issues, 1000)
    rows = read(error_report(kept))
    assert rows[0] == list(HEADER) and len(rows) == 1 + 1000 + 1
    assert rows[-1] == [
        "",
        "",
        NOT_LISTED,
        "Only the first 1,000 of 5,000 problems are listed (5,000 error(s) and 0 warning(s) "
        "in all).",
        "note",
        "",
        "",
    ]
    every = Problems.of(parsed.issues, 5000)
    assert every.left_out() is None and read(error_report(every))[-1][2] == "duplicate_email"


def test_a_report_kept_before_the_totals_counts_what_it_holds() -> None:
    stored = {"errors": [{"row": 2, "column": None, "code": "x", "message": "m"}]}
    assert Problems.stored(stored) == Problems([Issue(2, None, "x", "m")], [], 1, 0)
