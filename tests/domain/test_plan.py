"""The reconcile engine: what a file does to a directory, decided without a database."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from roster.domain import csvfile
from roster.domain.mode import Mode
from roster.domain.plan import Current, Guard, Reconciler, new_user, reconcile
from tests.factories import csv_bytes, people, person

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def directory_of(rows, *, managed_by="csv", role="user", removed=False, start=0):
    found = []
    for n, row in enumerate(rows):
        parsed = csvfile.parse(csv_bytes([row])).rows[0].values
        found.append(
            Current(
                id=uuid4(),
                values=new_user(parsed) | {"role": role},
                managed_by=managed_by,
                version=1,
                created_at=T0 + timedelta(seconds=start + n),
                removed=removed,
            )
        )
    return found


def plan_for(rows, current, mode=Mode.REPLACE, guard=Guard(100, 1000)):
    return reconcile(csvfile.parse(csv_bytes(rows)), current, mode, guard)


def names(items):
    return sorted(
        (i.values["username"] if hasattr(i, "values") and not hasattr(i, "user") else i.user.label)
        for i in items
    )


def test_first_import_adds_everyone():
    plan = plan_for(people(3), [])
    assert plan.counts == {"added": 3, "updated": 0, "removed": 0, "unchanged": 0, "invalid": 0}
    assert plan.added[0].values["active"] is True and plan.added[0].values["role"] == "user"


def test_same_file_again_is_a_no_op():
    current = directory_of(people(5))
    plan = plan_for(people(5), current)
    assert plan.counts == {"added": 0, "updated": 0, "removed": 0, "unchanged": 5, "invalid": 0}
    assert plan.changes == 0


def test_update_lists_only_changed_fields():
    current = directory_of(people(2))
    plan = plan_for([person(0, CSV_TITLE="Director"), person(1)], current)
    (update,) = plan.updated
    assert update.changes == {"title": ("Manager", "Director")}
    assert update.row == 2 and not update.ends_access


def test_match_is_case_insensitive_and_keeps_stored_case():
    current = directory_of([person(1, CSV_USERNAME="JanJ", CSV_EMAIL="Jan@Example.com")])
    plan = plan_for([person(1, CSV_USERNAME="janj", CSV_EMAIL="jan@example.com")], current)
    assert plan.counts["unchanged"] == 1 and plan.updated == []


def test_email_change_ends_access():
    current = directory_of([person(1)])
    plan = plan_for([person(1, CSV_EMAIL="new@example.com")], current)
    assert plan.updated[0].ends_access


def test_add_mode_never_removes():
    current = directory_of(people(10))
    plan = plan_for(people(2), current, mode=Mode.ADD)
    assert plan.removed == [] and plan.counts["unchanged"] == 2


def test_replace_removes_users_not_in_the_file():
    current = directory_of(people(4))
    plan = plan_for(people(2), current)
    assert names(plan.removed) == ["user000002", "user000003"]


def test_replace_spares_scim_users_and_refuses_to_edit_them():
    current = directory_of(people(2)) + directory_of([person(5)], managed_by="scim")
    plan = plan_for([*people(1), person(5, CSV_TITLE="Changed")], current)
    assert names(plan.removed) == ["user000001"]
    assert [(i.row, i.code) for i in plan.errors] == [(3, "managed_by_scim")]
    assert plan.updated == []


def test_replace_keeps_the_last_admin():
    admins = directory_of([person(8), person(9)], role="admin")
    current = directory_of(people(2)) + admins
    plan = plan_for(people(2), current)
    assert names(plan.removed) == ["user000009"]
    assert "last_admin_kept" in {i.code for i in plan.warnings}


def test_invalid_row_never_causes_its_user_to_be_removed():
    current = directory_of(people(3))
    rows = [person(0), person(1, CSV_EHBO="maybe"), person(2, CSV_USERNAME="x", CSV_EHBO="?")]
    plan = plan_for(rows, current)
    # row 3 is known by username, row 4 (broken username) by its e-mail address
    assert plan.removed == [] and plan.counts["invalid"] == 2


def test_unidentifiable_invalid_row_stops_all_removals():
    current = directory_of(people(3))
    rows = [person(0), person(1, CSV_USERNAME="", CSV_EMAIL="")]
    plan = plan_for(rows, current)
    assert plan.removed == []
    assert "removals_skipped" in {i.code for i in plan.warnings}


def test_email_of_another_user_is_an_error_on_that_row():
    current = directory_of(people(2))
    rows = [person(0, CSV_EMAIL="user000001@example.com")]
    plan = plan_for(rows, current, mode=Mode.ADD)
    assert [(i.row, i.column, i.code) for i in plan.errors] == [(2, "CSV_EMAIL", "email_taken")]
    assert "user000001" in plan.errors[0].message
    assert plan.updated == [] and plan.counts["invalid"] == 1


def test_swapped_emails_are_errors_on_both_rows():
    current = directory_of(people(2))
    rows = [
        person(0, CSV_EMAIL="user000001@example.com"),
        person(1, CSV_EMAIL="user000000@example.com"),
    ]
    plan = plan_for(rows, current)
    assert [(i.row, i.code) for i in plan.errors] == [(2, "email_taken"), (3, "email_taken")]
    assert plan.updated == [] and plan.removed == []


def test_renamed_account_taking_the_old_address_is_an_error_and_keeps_the_old_user():
    """AD renamed jdoe to john.doe: the address still belongs to jdoe, who is not removed."""
    current = directory_of([person(1, CSV_USERNAME="jdoe", CSV_EMAIL="john@example.com")])
    plan = plan_for([person(2, CSV_USERNAME="john.doe", CSV_EMAIL="john@example.com")], current)
    assert [(i.row, i.code) for i in plan.errors] == [(2, "email_taken")]
    assert "jdoe" in plan.errors[0].message
    assert plan.removed == [] and plan.added == []


def test_structurally_broken_row_stops_all_removals():
    """Its fields may be in the wrong columns: whoever it names must not be removed."""
    current = directory_of(people(3))
    text = csv_bytes(people(2)).decode().split("\r\n")
    text[1] = text[1].replace('"user000000";', 'user"000000;', 1)
    plan = reconcile(csvfile.parse("\r\n".join(text).encode()), current, Mode.REPLACE)
    assert [i.code for i in plan.errors] == ["stray_quote"]
    assert plan.removed == [] and "removals_skipped" in {i.code for i in plan.warnings}


def test_add_mode_refuses_email_of_a_user_who_stays():
    current = directory_of([person(1, CSV_USERNAME="jdoe", CSV_EMAIL="john@example.com")])
    rows = [person(2, CSV_USERNAME="john.doe", CSV_EMAIL="john@example.com")]
    plan = plan_for(rows, current, mode=Mode.ADD)
    assert [i.code for i in plan.errors] == ["email_taken"] and plan.added == []


def test_returning_username_gets_its_old_identity_back():
    gone = directory_of([person(1, CSV_USERNAME="JanJ")], removed=True)
    plan = plan_for([person(1, CSV_USERNAME="janj", CSV_TITLE="Back")], gone)
    (addition,) = plan.added
    assert addition.revive is gone[0]
    assert addition.values["username"] == "JanJ" and addition.values["title"] == "Back"


def test_removed_users_are_not_removed_again_nor_counted_by_the_guard():
    current = directory_of(people(3)) + directory_of(people(50, start=100), removed=True)
    plan = plan_for(people(3), current, guard=Guard(10, 5))
    assert plan.removed == [] and plan.held is None


def test_deletion_guard_holds_above_both_thresholds():
    current = directory_of(people(100))
    assert plan_for(people(94), current, guard=Guard()).held is None  # 6 > 5 but 6 % <= 10 %
    held = plan_for(people(89), current, guard=Guard())  # 11 > 5 and 11 % > 10 %
    assert held.held and "11 of 100" in held.held
    small = directory_of(people(10))
    assert plan_for(people(5), small, guard=Guard()).held is None  # 50 % but only 5 users


def test_truncated_export_is_held():
    current = directory_of(people(2000))
    plan = plan_for(people(1000), current, guard=Guard())
    assert plan.held and len(plan.removed) == 1000


def test_unreadable_file_plans_nothing():
    current = directory_of(people(3))
    plan = reconcile(csvfile.parse(b"CSV_USERNAME,CSV_EMAIL\n"), current, Mode.REPLACE)
    assert plan.changes == 0 and plan.errors[0].code == "wrong_separator"


def test_missing_optional_column_keeps_stored_values():
    current = directory_of([person(1, CSV_TITLE="Boss")])
    required = ["CSV_USERNAME", "CSV_FIRSTNAME", "CSV_SURNAME", "CSV_DISPLAYNAME", "CSV_EMAIL"]
    plan = reconcile(csvfile.parse(csv_bytes([person(1)], columns=required)), current, Mode.REPLACE)
    assert plan.counts["unchanged"] == 1


def test_empty_optional_field_clears_the_value():
    current = directory_of([person(1, CSV_TITLE="Boss")])
    plan = plan_for([person(1, CSV_TITLE="")], current)
    assert plan.updated[0].changes == {"title": ("Boss", None)}


def test_deletion_guard_boundaries_are_exact():
    """The product's default: held only above 10 % of the users AND above 5 users."""
    hundred = directory_of(people(100))
    assert plan_for(people(90), hundred, guard=Guard()).held is None  # exactly 10 %: applied
    assert plan_for(people(89), hundred, guard=Guard()).held  # 11 %: held
    forty = directory_of(people(40))
    assert plan_for(people(35), forty, guard=Guard()).held is None  # 12.5 % but exactly 5 users
    assert plan_for(people(34), forty, guard=Guard()).held  # 15 % and 6 users
    fifty = directory_of(people(50))
    assert plan_for(people(45), fifty, guard=Guard()).held is None  # 5 users, 10 %: both at
    assert plan_for(people(44), fifty, guard=Guard()).held  # 6 users, 12 %


def plan_as_seen(plan):
    return (
        plan.counts,
        [(a.row, dict(a.values), a.revive and a.revive.id) for a in plan.added],
        [(u.row, u.user.id, u.changes) for u in plan.updated],
        sorted(str(r.user.id) for r in plan.removed),
        plan.issues,
        plan.held,
    )


def test_a_directory_seen_a_part_at_a_time_gives_the_same_plan():
    """The import streams the directory past the planner: which user comes first, and in which
    part, changes nothing."""
    current = (
        directory_of(people(6))
        + directory_of([person(10), person(11)], role="admin")
        + directory_of([person(20)], managed_by="scim")
        + directory_of([person(30, CSV_USERNAME="back")], removed=True)
        + directory_of([person(40, CSV_USERNAME="jdoe", CSV_EMAIL="john@example.com")])
    )
    rows = [
        person(0),
        person(1, CSV_TITLE="Director"),
        person(2, CSV_EHBO="maybe"),  # invalid: its user stays
        person(3, CSV_EMAIL="user000004@example.com"),  # another user's address
        person(20, CSV_TITLE="Changed"),  # managed by SCIM
        person(30, CSV_USERNAME="BACK", CSV_TITLE="Returned"),
        person(41, CSV_USERNAME="john.doe", CSV_EMAIL="john@example.com"),
        person(50),
    ]
    parsed = csvfile.parse(csv_bytes(rows))
    for mode in Mode.ADD, Mode.REPLACE:
        whole = plan_as_seen(reconcile(parsed, current, mode, Guard(100, 1000)))
        for parts in (1, 3, len(current)):
            for order in (current, current[::-1]):
                reconciler = Reconciler(parsed, mode, Guard(100, 1000))
                for start in range(0, len(order), parts):
                    reconciler.see(order[start : start + parts])
                assert plan_as_seen(reconciler.plan()) == whole, (mode, parts)
    plan = reconcile(parsed, current, Mode.REPLACE, Guard(100, 1000))
    assert plan.counts == {"added": 2, "updated": 1, "removed": 2, "unchanged": 1, "invalid": 4}
    assert sorted((i.row, i.code) for i in plan.errors) == [
        (4, "invalid_flag"),
        (5, "email_taken"),
        (6, "managed_by_scim"),
        (8, "email_taken"),
    ]
    assert names(plan.removed) == ["user000005", "user000011"]  # the first admin stays
    assert [(a.values["username"], a.revive is not None) for a in plan.added] == [
        ("back", True),
        ("user000050", False),
    ]


def test_a_replace_with_an_untraceable_row_warns_even_when_nobody_would_go():
    rows = [person(0), person(1, CSV_USERNAME="", CSV_EMAIL="")]
    for current in ([], directory_of(people(1))):
        plan = plan_for(rows, current)
        assert plan.removed == [] and "removals_skipped" in {i.code for i in plan.warnings}
    assert "removals_skipped" not in {i.code for i in plan_for(rows, [], mode=Mode.ADD).warnings}
