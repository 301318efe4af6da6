"""The user fields and the template's rules.

One table drives the CSV contract, the console's forms and SCIM: a rule changed here changes
everywhere. Validation returns values, never raises: a problem is a (code, message) pair that
each edge places at its own location (a CSV row and column, a form field, a SCIM path).
"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email


class Kind(StrEnum):
    TEXT = "text"
    USERNAME = "username"
    PHONE = "phone"
    EMAIL = "email"
    FLAG = "flag"
    PHOTO = "photo"


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the directory's name for it (a column of the users table)
    column: str  # the CSV template's header
    label: str  # what a person reads
    required: bool
    min_len: int
    max_len: int | None
    kind: Kind
    example: str


FIELDS: tuple[Field, ...] = (
    Field("username", "CSV_USERNAME", "Username", True, 2, 50, Kind.USERNAME, "JanJ"),
    Field("first_name", "CSV_FIRSTNAME", "First name", True, 2, 50, Kind.TEXT, "Jan"),
    Field("surname", "CSV_SURNAME", "Surname", True, 2, 50, Kind.TEXT, "Jansen"),
    Field("display_name", "CSV_DISPLAYNAME", "Display name", True, 2, 20, Kind.TEXT, "Jansen, Jan"),
    Field("title", "CSV_TITLE", "Job title", False, 2, 20, Kind.TEXT, "Manager"),
    Field("phone", "CSV_PHONE", "Phone", False, 2, 20, Kind.PHONE, "+3120123456"),
    Field("mobile", "CSV_MOBILE", "Mobile", False, 2, 20, Kind.PHONE, "+3165123456"),
    Field("department", "CSV_DEPARTMENT", "Department", False, 2, 50, Kind.TEXT, "Support"),
    Field("email", "CSV_EMAIL", "E-mail", True, 2, None, Kind.EMAIL, "j.jansen@example.com"),
    Field("first_aider", "CSV_EHBO", "First aider (EHBO)", False, 1, 1, Kind.FLAG, "1"),
    Field(
        "emergency_responder",
        "CSV_BHV",
        "Emergency response officer (BHV)",
        False,
        1,
        1,
        Kind.FLAG,
        "0",
    ),
    Field(
        "profile_photo",
        "CSV_PROFILEPHOTO",
        "Profile photo",
        False,
        5,
        500,
        Kind.PHOTO,
        "janjansen.jpg",
    ),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
REQUIRED: tuple[Field, ...] = tuple(f for f in FIELDS if f.required)


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str


def key(value: str) -> str:
    """The case-insensitive form usernames and e-mail addresses are compared by."""
    return value.casefold()


def clean(raw: str) -> str:
    """Trim, and compose accents the way every other system stores them (NFC)."""
    value = raw.strip()
    return value if value.isascii() else unicodedata.normalize("NFC", value)


# Characters never allowed in text: control, format (zero-width, bidi overrides), private
# use, unassigned and line/paragraph separators, plus the markup brackets.
_BANNED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ASCII_BANNED = re.compile(r"[\x00-\x1f\x7f<>]")
_PHONE = re.compile(r"[0-9+\-(). /]+")
_IMAGE_NAME = re.compile(r"[^/\\<>\"]+\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|avif)", re.IGNORECASE)


def _text_problem(value: str) -> Problem | None:
    if value.isascii():
        bad = _ASCII_BANNED.search(value)
        char = bad.group() if bad else None
    else:
        char = next(
            (c for c in value if c in "<>" or unicodedata.category(c) in _BANNED_CATEGORIES),
            None,
        )
    if char is None:
        return None
    if char in "<>":
        return Problem("invalid_characters", f"must not contain '{char}'")
    return Problem(
        "invalid_characters",
        f"contains an invisible or control character (U+{ord(char):04X})",
    )


# Most addresses are plain ASCII ones that email-validator certainly accepts; checking those
# with one regex keeps a 100,000-row import fast. Anything else gets the full validator.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:(?!..--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,63})"
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(value: str) -> bool:
    match = _PLAIN_EMAIL.fullmatch(value)
    return (
        match is not None
        and len(value) <= 254
        and value.index("@") <= 64
        and match.group(1).lower() not in _SPECIAL_USE
    )


def _email_problem(value: str) -> Problem | None:
    if _plain_email(value):
        return None
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        return Problem("invalid_email", f"is not a valid e-mail address: {error}")
    return None


def _photo_problem(value: str) -> Problem | None:
    problem = _text_problem(value)
    if problem:
        return problem
    if value.lower().startswith(("http://", "https://")):
        parts = urlsplit(value)
        if parts.netloc and not any(c.isspace() or c == '"' for c in value):
            return None
        return Problem("invalid_photo", "is not a valid http(s) link")
    if _IMAGE_NAME.fullmatch(value):
        return None
    return Problem(
        "invalid_photo",
        "must be an http(s) link or an image file name such as janjansen.jpg",
    )


def check(field: Field, raw: str | None) -> tuple[Any, Problem | None]:
    """Validate one value. Returns the stored value (None for "no value") and any problem."""
    value = clean(raw or "")
    if not value:
        if field.required:
            return None, Problem("required", "is required")
        return None, None
    if field.kind is Kind.FLAG:
        if value in ("1", "0"):
            return value == "1", None
        return None, Problem("invalid_flag", "must be 1 or 0")
    length = len(value)
    if length < field.min_len:
        return None, Problem(
            "too_short", f"must be at least {field.min_len} characters (this is {length})"
        )
    if field.max_len is not None and length > field.max_len:
        return None, Problem(
            "too_long", f"must be at most {field.max_len} characters (this is {length})"
        )
    problem: Problem | None
    match field.kind:
        case Kind.PHONE:
            ok = _PHONE.fullmatch(value) and any(c.isdigit() for c in value)
            problem = (
                None
                if ok
                else Problem("invalid_phone", "may hold only digits, spaces and + - ( ) . /")
            )
        case Kind.EMAIL:
            problem = _email_problem(value)
        case Kind.PHOTO:
            problem = _photo_problem(value)
        case Kind.USERNAME:
            problem = _text_problem(value)
            if problem is None and any(c.isspace() for c in value):
                problem = Problem("contains_space", "must not contain spaces")
        case _:
            problem = _text_problem(value)
    return (None, problem) if problem else (value, None)


def suspect_damage(field: Field, value: Any) -> Problem | None:
    """A '?' where a letter should be: what an ASCII-only export does to 'Jürgen'."""
    if field.kind in (Kind.TEXT, Kind.USERNAME) and isinstance(value, str) and "?" in value:
        return Problem(
            "suspect_encoding",
            f"'{value}' has a '?' where a letter is expected: the export may have lost "
            "non-ASCII letters (save it as UTF-8)",
        )
    return None
