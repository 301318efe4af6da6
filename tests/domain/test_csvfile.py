"""The CSV contract, rule by rule, as an admin's file would break it."""

import codecs

import pytest

from roster.domain import csvfile
from roster.domain.fields import FIELDS
from tests.factories import COLUMNS, csv_bytes, csv_text, people, person


def codes(result: csvfile.CsvFile) -> set[str]:
    return {i.code for i in result.issues}


def only_issue(result: csvfile.CsvFile) -> csvfile.Issue:
    assert len(result.issues) == 1, result.issues
    return result.issues[0]


def test_template_parses_to_the_seed_example():
    result = csvfile.parse(csvfile.template().encode())
    assert result.issues == []
    (row,) = result.rows
    assert row.row == 2
    assert row.values == {
        "username": "JanJ",
        "first_name": "Jan",
        "surname": "Jansen",
        "display_name": "Jansen, Jan",
        "title": "Manager",
        "phone": "+3120123456",
        "mobile": "+3165123456",
        "department": "Support",
        "email": "j.jansen@example.com",
        "first_aider": True,
        "emergency_responder": False,
        "profile_photo": "janjansen.jpg",
    }


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8"),
        lambda t: codecs.BOM_UTF8 + t.encode("utf-8"),
        lambda t: t.encode("utf-16"),  # Out-File: UTF-16LE with BOM
        lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom"],
)
def test_accepted_encodings_read_non_ascii_names(encode):
    text = csv_text([person(1, CSV_FIRSTNAME="Jürgen", CSV_SURNAME="Ørsted")])
    result = csvfile.parse(encode(text))
    assert result.errors == []
    assert result.rows[0].values["first_name"] == "Jürgen"
    assert result.rows[0].values["surname"] == "Ørsted"


def test_bom_glued_to_first_header_is_not_an_unknown_column():
    result = csvfile.parse(codecs.BOM_UTF8 + csv_bytes(people(2)))
    assert result.issues == []
    assert result.columns[0] == "username"


def test_windows_ansi_file_is_an_encoding_error_with_the_line():
    data = csv_text([person(1), person(2, CSV_FIRSTNAME="Jürgen")]).encode("cp1252")
    issue = only_issue(csvfile.parse(data))
    assert (issue.row, issue.code) == (None, "encoding")
    assert "line 3" in issue.message and "UTF-8" in issue.message
    assert not csvfile.parse(data).readable


def test_utf16_without_bom_is_named():
    data = csv_text(people(2)).encode("utf-16-le")
    issue = only_issue(csvfile.parse(data))
    assert issue.code == "encoding" and "UTF-16" in issue.message


def test_utf32_is_refused():
    assert only_issue(csvfile.parse(csv_text(people(1)).encode("utf-32"))).code == "encoding"


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_line_ends(newline):
    result = csvfile.parse(csv_bytes(people(3), newline=newline))
    assert result.issues == [] and [r.row for r in result.rows] == [2, 3, 4]


def test_missing_final_newline():
    data = csv_bytes(people(2)).rstrip(b"\r\n")
    assert len(csvfile.parse(data).rows) == 2


@pytest.mark.parametrize(("sep", "named"), [(",", "comma"), ("\t", "tab")])
def test_wrong_separator_says_which(sep, named):
    result = csvfile.parse(csv_bytes(people(2), sep=sep))
    issue = only_issue(result)
    assert issue.code == "wrong_separator" and named in issue.message and "';'" in issue.message
    assert not result.readable and result.rows == []


def test_excel_sep_hint_is_skipped_and_rows_keep_spreadsheet_numbers():
    result = csvfile.parse(b"sep=;\r\n" + csv_bytes(people(2)))
    assert result.issues == [] and [r.row for r in result.rows] == [2, 3]


def test_excel_sep_hint_for_comma_is_wrong_separator():
    data = b"sep=,\r\n" + csv_bytes(people(2), sep=",")
    assert only_issue(csvfile.parse(data)).code == "wrong_separator"


def test_columns_in_any_order_and_case():
    columns = list(reversed(COLUMNS))
    text = csv_text(people(2), columns=columns).replace("CSV_EMAIL", "csv_email")
    result = csvfile.parse(text.encode())
    assert result.issues == []
    assert result.rows[1].values["email"] == "user000001@example.com"


def test_optional_columns_may_be_left_out():
    required = [f.column for f in FIELDS if f.required]
    result = csvfile.parse(csv_bytes(people(2), columns=required))
    assert result.issues == []
    assert set(result.rows[0].values) == {
        "username",
        "first_name",
        "surname",
        "display_name",
        "email",
    }


def test_missing_mandatory_column_is_named():
    columns = [c for c in COLUMNS if c != "CSV_EMAIL"]
    result = csvfile.parse(csv_bytes(people(2), columns=columns))
    issue = only_issue(result)
    assert (issue.row, issue.code) == (1, "missing_columns") and "CSV_EMAIL" in issue.message
    assert not result.readable


def test_unknown_column_is_a_warning():
    result = csvfile.parse(csv_bytes(people(1), columns=[*COLUMNS, "CSV_SHOESIZE"]))
    issue = only_issue(result)
    assert (issue.severity, issue.code, issue.column) == (
        "warning",
        "unknown_column",
        "CSV_SHOESIZE",
    )
    assert result.rows[0].valid


def test_duplicate_column_is_an_error():
    result = csvfile.parse(csv_bytes(people(1), columns=[*COLUMNS, "CSV_EMAIL"]))
    assert "duplicate_column" in codes(result) and not result.readable


def test_quoted_separator_and_doubled_quotes_inside_fields():
    row = person(1, CSV_DISPLAYNAME='Jansen; "JJ"', CSV_SURNAME="van 't Hoff")
    result = csvfile.parse(csv_bytes([row]))
    assert result.issues == []
    assert result.rows[0].values["display_name"] == 'Jansen; "JJ"'
    assert result.rows[0].values["surname"] == "van 't Hoff"


def test_a_file_without_quotes_is_read_without_a_warning():
    result = csvfile.parse(csv_bytes(people(3), quote=False))
    assert result.issues == []
    assert len(result.rows) == 3 and all(r.valid for r in result.rows)


def test_rows_added_by_hand_without_quotes_to_a_quoted_file_get_one_warning():
    quoted = csv_text(people(3)).rstrip("\r\n").split("\r\n")
    by_hand = csv_text(people(2, start=3), quote=False).rstrip("\r\n").split("\r\n")[1:]
    result = csvfile.parse(("\r\n".join(quoted + by_hand) + "\r\n").encode())
    issue = only_issue(result)
    assert (issue.severity, issue.code, issue.row) == ("warning", "unquoted_fields", None)
    assert issue.message.startswith("2 row(s) have fields without double quotes (first: row 5)")
    assert "while 4 quote every field" in issue.message
    assert len(result.rows) == 5 and all(r.valid for r in result.rows)


def test_excel_csv_utf8_quotes_only_where_needed():
    """Excel's "CSV UTF-8": BOM, ';' in NL locale, quotes only around fields that need them."""
    lines = [";".join(COLUMNS)]
    lines.append(
        'JanJ;Jan;Jansen;"Jansen; Jan";Manager;+3120123456;;Support;j.jansen@example.com;1;0;'
    )
    data = codecs.BOM_UTF8 + ("\r\n".join(lines) + "\r\n").encode()
    result = csvfile.parse(data)
    assert result.issues == []
    assert result.rows[0].values["display_name"] == "Jansen; Jan"
    assert result.rows[0].values["mobile"] is None


def test_too_few_and_too_many_fields():
    text = csv_text(people(3)).split("\r\n")
    text[1] = text[1].rsplit(";", 1)[0]
    text[2] = text[2] + ';"extra"'
    result = csvfile.parse("\r\n".join(text).encode())
    by_row = {i.row: i for i in result.errors}
    assert by_row[2].code == by_row[3].code == "field_count"
    assert "11 fields" in by_row[2].message and "13 fields" in by_row[3].message
    assert [r.valid for r in result.rows] == [False, False, True]


def test_stray_quote_in_unquoted_field_is_a_row_error():
    text = csv_text(people(2), quote=False).split("\r\n")
    text[1] = text[1].replace("Jan;", 'J"an;', 1)
    result = csvfile.parse("\r\n".join(text).encode())
    assert [(i.row, i.code) for i in result.errors] == [(2, "stray_quote")]
    assert result.rows[1].valid


def test_text_after_closing_quote_is_a_row_error():
    text = csv_text(people(2)).replace('"Jan";', '"Jan"x;', 1)
    result = csvfile.parse(text.encode())
    assert [(i.row, i.code) for i in result.errors] == [(2, "text_after_quote")]


def test_unclosed_quote_makes_the_file_unreadable():
    text = csv_text(people(3)).replace('"user2.jpg"', '"user2.jpg', 1)
    result = csvfile.parse(text.encode())
    assert not result.readable
    assert [(i.row, i.code) for i in result.errors] == [(4, "unclosed_quote")]


def test_quote_left_open_mid_file_swallowing_rows_makes_the_file_unreadable():
    """Otherwise the rows it swallowed would look absent, and a replace would remove them."""
    text = csv_text(people(4)).replace('"user1.jpg"', '"user1.jpg', 1)
    result = csvfile.parse(text.encode())
    assert not result.readable
    assert [(i.row, i.code) for i in result.errors] == [(3, "text_after_quote")]


def test_stray_opening_quote_within_a_line_is_a_row_error():
    text = csv_text(people(3)).replace('"Jansen1"', '"Jansen1', 1)
    result = csvfile.parse(text.encode())
    assert result.readable
    assert [(i.row, i.code) for i in result.errors] == [(3, "text_after_quote")]
    assert [r.valid for r in result.rows] == [True, False, True]


def test_quoted_newline_spans_lines_but_is_one_row():
    text = csv_text([person(1, CSV_TITLE="Line\none"), person(2)])
    result = csvfile.parse(text.encode())
    assert [(i.row, i.column, i.code) for i in result.errors] == [
        (2, "CSV_TITLE", "invalid_characters")
    ]
    assert [r.row for r in result.rows] == [2, 3] and result.rows[1].valid


def test_blank_rows_are_skipped_but_counted_as_rows():
    text = csv_text(people(2)).replace("\r\n", "\r\n\r\n;;;;\r\n", 1)
    result = csvfile.parse(text.encode())
    assert result.errors == []
    assert [r.row for r in result.rows] == [4, 5]


def test_values_are_trimmed_and_nfc_composed():
    row = person(1, CSV_FIRSTNAME="  Jo\u0308rg  ", CSV_EMAIL=" user000001@example.com ")
    result = csvfile.parse(csv_bytes([row]))
    assert result.rows[0].values["first_name"] == "Jörg"
    assert result.rows[0].values["email"] == "user000001@example.com"


def test_empty_optional_field_means_no_value():
    result = csvfile.parse(csv_bytes([person(1, CSV_TITLE="", CSV_EHBO="", CSV_PHONE=" ")]))
    values = result.rows[0].values
    assert values["title"] is None and values["first_aider"] is None and values["phone"] is None


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("CSV_USERNAME", "", "required"),
        ("CSV_USERNAME", "J", "too_short"),
        ("CSV_USERNAME", "x" * 51, "too_long"),
        ("CSV_USERNAME", "Jan J", "contains_space"),
        ("CSV_FIRSTNAME", "", "required"),
        ("CSV_FIRSTNAME", "J", "too_short"),
        ("CSV_FIRSTNAME", "<script>", "invalid_characters"),
        ("CSV_SURNAME", "x" * 51, "too_long"),
        ("CSV_SURNAME", "Jan\u202esen", "invalid_characters"),
        ("CSV_DISPLAYNAME", "x" * 21, "too_long"),
        ("CSV_DISPLAYNAME", "", "required"),
        ("CSV_TITLE", "M", "too_short"),
        ("CSV_TITLE", "x" * 21, "too_long"),
        ("CSV_PHONE", "+31 20 abc", "invalid_phone"),
        ("CSV_PHONE", "+-", "invalid_phone"),
        ("CSV_PHONE", "1" * 21, "too_long"),
        ("CSV_MOBILE", "06-1234567x", "invalid_phone"),
        ("CSV_DEPARTMENT", "x" * 51, "too_long"),
        ("CSV_DEPARTMENT", "Sales\x07", "invalid_characters"),
        ("CSV_EMAIL", "", "required"),
        ("CSV_EMAIL", "jan.example.com", "invalid_email"),
        ("CSV_EMAIL", "jan@@example.com", "invalid_email"),
        ("CSV_EMAIL", "jan@example.invalid", "invalid_email"),
        ("CSV_EMAIL", "jan@localhost", "invalid_email"),
        ("CSV_EHBO", "2", "invalid_flag"),
        ("CSV_EHBO", "ja", "invalid_flag"),
        ("CSV_BHV", "yes", "invalid_flag"),
        ("CSV_PROFILEPHOTO", "x.jp", "too_short"),
        ("CSV_PROFILEPHOTO", "photo.exe", "invalid_photo"),
        ("CSV_PROFILEPHOTO", "ftp://example.com/a.jpg", "invalid_photo"),
        ("CSV_PROFILEPHOTO", "https://x/" + "a" * 495, "too_long"),
        ("CSV_PROFILEPHOTO", "../etc/passwd.jpg", "invalid_photo"),
        ("CSV_PROFILEPHOTO", "javascript:alert(1).png", "invalid_photo"),
        ("CSV_PROFILEPHOTO", "data:x,alert(1).png", "invalid_photo"),
    ],
)
def test_every_rule_names_row_column_and_rule(column, value, code):
    result = csvfile.parse(csv_bytes([person(1), person(2, **{column: value})]))
    errors = result.errors
    assert [(i.row, i.column, i.code) for i in errors] == [(3, column, code)]
    assert column in errors[0].message
    assert [r.valid for r in result.rows] == [True, False]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("CSV_DISPLAYNAME", "Jansen, Jan"),
        ("CSV_SURNAME", "van 't Hoff"),
        ("CSV_SURNAME", "Ørsted"),
        ("CSV_FIRSTNAME", "Zoë-Anne"),
        ("CSV_DEPARTMENT", "R&D / Sales (NL)"),
        ("CSV_PHONE", "+31 (0)20-123.45/6"),
        ("CSV_EMAIL", "jürgen@müller.de"),
        ("CSV_PROFILEPHOTO", "https://cdn.example.com/p/jan.jpg?size=200"),
        ("CSV_PROFILEPHOTO", "Jan Jansen.JPEG"),
        ("CSV_USERNAME", "jan.jansen@corp"),
        ("CSV_DISPLAYNAME", "Jo"),
        ("CSV_DISPLAYNAME", "x" * 20),
    ],
)
def test_valid_values_at_and_inside_the_limits(column, value):
    result = csvfile.parse(csv_bytes([person(1, **{column: value})]))
    assert result.errors == [], result.errors


def test_duplicates_differing_in_case_are_an_error_on_both_rows():
    rows = [
        person(1),
        person(2, CSV_USERNAME="USER000001"),
        person(3, CSV_EMAIL="User000003@Example.com"),
    ]
    rows.append(person(4, CSV_EMAIL="user000003@example.com"))
    result = csvfile.parse(csv_bytes(rows))
    found = sorted((i.row, i.code) for i in result.errors)
    assert found == [
        (2, "duplicate_username"),
        (3, "duplicate_username"),
        (4, "duplicate_email"),
        (5, "duplicate_email"),
    ]
    messages = {(i.row, i.code): i.message for i in result.errors}
    assert messages[2, "duplicate_username"] == (
        "CSV_USERNAME is the same as on row 3: 2 rows share this username"
    )
    assert messages[3, "duplicate_username"].startswith("CSV_USERNAME is the same as on row 2")
    assert "as on row 4: 2 rows share this e-mail address" in messages[5, "duplicate_email"]
    assert not any(r.valid for r in result.rows)


def test_question_mark_where_a_letter_was_is_a_warning():
    result = csvfile.parse(csv_bytes([person(1, CSV_FIRSTNAME="J?rgen")]))
    issue = only_issue(result)
    assert (issue.severity, issue.row, issue.column, issue.code) == (
        "warning",
        2,
        "CSV_FIRSTNAME",
        "suspect_encoding",
    )
    assert result.rows[0].valid


def test_structurally_broken_row_names_nobody():
    text = csv_text(people(1)).replace('"user000000";', '"user000000";"shifted";', 1)
    (row,) = csvfile.parse(text.encode()).rows
    assert not row.valid and (row.username_key, row.email_key) == (None, None)


def test_invalid_row_still_names_its_user():
    result = csvfile.parse(csv_bytes([person(1, CSV_EHBO="x")]))
    row = result.rows[0]
    assert not row.valid
    assert (row.username_key, row.email_key) == ("user000001", "user000001@example.com")


def test_size_limit_refuses_up_front():
    result = csvfile.parse(csv_bytes(people(10)), max_bytes=100)
    assert only_issue(result).code == "file_too_large" and not result.readable


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", codecs.BOM_UTF8, b"   "])
def test_empty_file(data):
    result = csvfile.parse(data)
    assert only_issue(result).code == "empty_file" and not result.readable


def test_nul_bytes_are_refused():
    data = csv_bytes(people(1)).replace(b"Jan", b"J\x00n", 1)
    assert only_issue(csvfile.parse(data)).code == "encoding"
