"""The user fields and the template's rules.

One table drives the CSV contract, the console's forms and SCIM: a rule changed here changes
everywhere. Validation returns values, never raises: a problem is a (code, message) pair that
each edge places at its own location (a CSV row and column, a form field, a SCIM path).
"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import regex


class Source(StrEnum):
    """Whose rules a value is checked by. The template's (a CSV file, the console's form) are
    the file's contract; an identity provider (SCIM) is the source of truth for its users, so
    its values are stored whole up to at least Entra ID's own limits, and only rules that keep
    the data usable apply (no control characters; '<' and '>' are data, escaped wherever shown)."""

    TEMPLATE = "template"
    IDP = "idp"


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
    idp_max: int | None = None  # the longest value an identity provider may send (Source.IDP)

    def longest(self, source: "Source") -> int | None:
        return self.idp_max if source is Source.IDP else self.max_len

    def shortest(self, source: "Source") -> int:
        """An identity provider's non-empty value is long enough ("J" is a given name)."""
        return 1 if source is Source.IDP else self.min_len


# The last number of each is an identity provider's limit (Entra ID's own: userPrincipalName
# 113, displayName 256, givenName and surname 64, jobTitle 128, department 64, phone numbers
# 64; a userName may also be fed from an e-mail address, hence 256; e-mail 320). A file's
# e-mail address is bounded by SMTP's path (254 bytes, RFC 5321); an identity provider's by
# the syntax of its parts, within 320 characters.
FIELDS: tuple[Field, ...] = (
    Field("username", "CSV_USERNAME", "Username", True, 2, 50, Kind.USERNAME, "JanJ", 256),
    Field("first_name", "CSV_FIRSTNAME", "First name", True, 2, 50, Kind.TEXT, "Jan", 64),
    Field("surname", "CSV_SURNAME", "Surname", True, 2, 50, Kind.TEXT, "Jansen", 64),
    Field(
        "display_name",
        "CSV_DISPLAYNAME",
        "Display name",
        True,
        2,
        20,
        Kind.TEXT,
        "Jansen, Jan",
        256,
    ),
    Field("title", "CSV_TITLE", "Job title", False, 2, 20, Kind.TEXT, "Manager", 128),
    Field("phone", "CSV_PHONE", "Phone", False, 2, 20, Kind.PHONE, "+3120123456", 64),
    Field("mobile", "CSV_MOBILE", "Mobile", False, 2, 20, Kind.PHONE, "+3165123456", 64),
    Field("department", "CSV_DEPARTMENT", "Department", False, 2, 50, Kind.TEXT, "Support", 64),
    Field("email", "CSV_EMAIL", "E-mail", True, 2, None, Kind.EMAIL, "j.jansen@example.com", 320),
    Field("first_aider", "CSV_EHBO", "First aider (EHBO)", False, 1, 1, Kind.FLAG, "1", 1),
    Field(
        "emergency_responder",
        "CSV_BHV",
        "Emergency response officer (BHV)",
        False,
        1,
        1,
        Kind.FLAG,
        "0",
        1,
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
        2048,
    ),
)

# Fields whose values repeat across an organization (the same department for hundreds of
# people): a large import keeps one copy of each distinct value instead of one per user.
REPEATING: frozenset[str] = frozenset({"first_name", "surname", "title", "department"})

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
REQUIRED: tuple[Field, ...] = tuple(f for f in FIELDS if f.required)


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str


def shared(values: list[Any], canonical: dict[Any, Any]) -> list[Any]:
    """The same values, equal ones as one object (see REPEATING)."""
    return [canonical.setdefault(v, v) for v in values]


def key(value: str) -> str:
    """The form usernames, e-mail addresses and group names are compared by, on every channel:
    compatibility forms folded and case folded (Unicode's identifier caseless match,
    NFKC_Casefold), so a full-width "admin", "ADMIN" and "admin" are one name, and a decomposed
    "José" is the composed one."""
    if value.isascii():
        folded = value.lower()  # casefold and NFKC change nothing else in ASCII
    else:
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return value if folded == value else folded  # keep one string where they are the same


# The widths of the columns keys are stored in (users.username_key, users.email_key,
# groups.display_name_key): a value whose key would not fit (compatibility characters can
# expand eighteen-fold) is refused.
KEY_WIDTH = {"username": 1024, "email": 320, "group": 1024}


def key_problem(value: str, width: int) -> Problem | None:
    """Whether the key of `value` fits a key column `width` UTF-8 bytes wide (counting bytes
    also keeps a key within PostgreSQL's limit for an index entry)."""
    size = len(key(value).encode())
    if size <= width:
        return None
    return Problem(
        "too_long", f"is too long once compared case-insensitively ({size} bytes; at most {width})"
    )


def clean(raw: str) -> str:
    """Trim, and compose accents the way every other system stores them (NFC)."""
    value = raw.strip()
    return value if value.isascii() else unicodedata.normalize("NFC", value)


# Characters never allowed in text: control, format (zero-width, bidi overrides), surrogates,
# private use, unassigned, line and paragraph separators, and the markup brackets.
_INVISIBLE = r"\p{C}\p{Zl}\p{Zp}"
_BANNED = f"{_INVISIBLE}<>"
_BANNED_CHARACTER = regex.compile(f"[{_BANNED}]")
_INVISIBLE_CHARACTER = regex.compile(f"[{_INVISIBLE}]")
_PHONE = re.compile(r"[0-9+\-(). /]+")
# A file name, not a path nor a link of another scheme (no "javascript:x.png").
_IMAGE_NAME = re.compile(r"[^/\\<>\":]+\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|avif)", re.IGNORECASE)


_CONTROL = regex.compile(r"\p{Cc}")


def has_control(*values: str | None) -> bool:
    """Whether any value holds a control character (NUL, a line feed, DEL, ...). No stored
    text holds one (every channel refuses them), so a sign-in, lookup or search by such a value
    matches nothing; PostgreSQL refuses NUL in text outright."""
    return any(value is not None and _CONTROL.search(value) for value in values)


def text_problem(value: str, source: Source = Source.TEMPLATE) -> Problem | None:
    banned = _INVISIBLE_CHARACTER if source is Source.IDP else _BANNED_CHARACTER
    bad = banned.search(value)
    char = bad.group() if bad else None
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

# Addresses are checked for syntax, not deliverability: special-use and private domains
# (corp.local, .internal, .lan, .test) are real Active Directory mail domains. Only the names
# that can never be another organization's mailbox stay refused: `localhost` (this machine)
# and `invalid` (invalid by definition). email-validator documents editing its list for this.
NOT_A_MAIL_DOMAIN = ("localhost", "invalid")
SMTP_LONGEST = 254  # bytes of an address SMTP carries (RFC 5321's path, less its brackets)


@cache
def _email_validator() -> ModuleType:
    """email-validator, loaded by the first address the plain pattern does not settle (a
    command that checks none starts without it), its special-use domains cut to the two."""
    import email_validator

    names = email_validator.SPECIAL_USE_DOMAIN_NAMES
    names[:] = [name for name in names if name in NOT_A_MAIL_DOMAIN]
    return email_validator


# A plain address's top-level domain that is no mail domain, at the end of a line of a column.
_NOT_A_MAIL_TLD = re.compile(
    "\\.(?:" + "|".join(NOT_A_MAIL_DOMAIN) + ")$", re.IGNORECASE | re.MULTILINE
)


def _plain_email(value: str) -> bool:
    match = _PLAIN_EMAIL.fullmatch(value)
    return (
        match is not None
        and len(value) <= 254
        and value.index("@") <= 64
        and match.group(1).lower() not in NOT_A_MAIL_DOMAIN
    )


def _email_problem(value: str, source: Source) -> Problem | None:
    if _plain_email(value):
        return None
    validator = _email_validator()
    try:
        if source is Source.IDP and len(value.encode()) > SMTP_LONGEST:
            _check_parts(value, validator)
        else:
            validator.validate_email(value, check_deliverability=False)
    except validator.EmailNotValidError as error:
        return Problem("invalid_email", f"is not a valid e-mail address: {error}")
    return None


def _check_parts(value: str, validator: ModuleType) -> None:
    """The syntax of an address longer than SMTP's path allows, by its parts: the part before
    the @ beside a short domain, and the domain on its own (each by email-validator)."""
    local, at, domain = value.rpartition("@")
    if not at:
        raise validator.EmailSyntaxError("An email address must have an @-sign.")
    validator.validate_email(f"{local}@example.com", check_deliverability=False)
    validator.syntax.validate_email_domain_name(domain)


def _photo_problem(value: str) -> Problem | None:
    problem = text_problem(value)  # never '<' or '>': a link or a file name has none
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


def check(
    field: Field, raw: str | None, source: Source = Source.TEMPLATE
) -> tuple[Any, Problem | None]:
    """Validate one value by the rules of its source. Returns the stored value (None for "no
    value") and any problem."""
    value = clean(raw or "")
    if not value:
        if field.required and source is Source.TEMPLATE:  # an identity provider's is derived
            return None, Problem("required", "is required")
        return None, None
    if field.kind is Kind.FLAG:
        if value in ("1", "0"):
            return value == "1", None
        return None, Problem("invalid_flag", "must be 1 or 0")
    length, shortest, longest = len(value), field.shortest(source), field.longest(source)
    if length < shortest:
        return None, Problem(
            "too_short", f"must be at least {shortest} characters (this is {length})"
        )
    if longest is not None and length > longest:
        return None, Problem("too_long", f"must be at most {longest} characters (this is {length})")
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
            problem = _email_problem(value, source)
        case Kind.PHOTO:
            problem = _photo_problem(value)
        case Kind.USERNAME:
            problem = text_problem(value, source)
            if problem is None and any(c.isspace() for c in value):
                problem = Problem("contains_space", "must not contain spaces")
        case _:
            problem = text_problem(value, source)
    if problem is None and field.name in KEY_WIDTH:
        problem = key_problem(value, KEY_WIDTH[field.name])
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


def _quick_pattern(field: Field) -> regex.Pattern[str] | None:
    """A pattern that only matches (trimmed, NFC) values `check` accepts unchanged."""
    lengths = f"{{{field.min_len},{field.max_len or ''}}}"
    match field.kind:
        case Kind.TEXT:  # '?' goes the long way, to be warned about
            return regex.compile(f"[^{_BANNED}?]{lengths}")
        case Kind.USERNAME:
            return regex.compile(f"[^{_BANNED}?\\p{{Z}}\\s]{lengths}")
        case Kind.PHONE:
            return regex.compile(rf"(?=[^\n]*[0-9])[0-9+\-(). /]{lengths}")
        case Kind.FLAG:
            return regex.compile("[01]")
        case Kind.PHOTO:
            return regex.compile(
                r"(?i:https?://[a-z0-9.-]+(?::[0-9]+)?(?:/[!#-;=?-~]*)?"
                r"|[a-z0-9 ._()-]*[a-z0-9_()-]\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic|avif))"
            )
        case _:
            return None


def _nfc(value: str) -> bool:
    return value.isascii() or unicodedata.is_normalized("NFC", value)


_QUICK = {f.name: _quick_pattern(f) for f in FIELDS}


def quick(field: Field, value: str) -> bool:
    """True when `value` (already trimmed) certainly passes the template's `check` unchanged:
    lets a 100,000-row file skip the full rules for the plain values that make up almost all
    of it."""
    if not _nfc(value):
        return False
    if field.kind is Kind.EMAIL:
        return _plain_email(value)
    pattern = _QUICK[field.name]
    if pattern is None or pattern.fullmatch(value) is None:
        return False
    if field.name in KEY_WIDTH and not value.isascii():
        return key_problem(value, KEY_WIDTH[field.name]) is None
    return field.kind is not Kind.PHOTO or field.min_len <= len(value) <= (field.max_len or 0)


def _column_pattern(field: Field) -> re.Pattern[str] | None:
    """The quick pattern of an ASCII-only kind, in `re` (faster a call than `regex`). Matched a
    value at a time: one match over the joined column would keep a backtracking mark for every
    row (tens of megabytes for a large file)."""
    if field.kind not in (Kind.PHONE, Kind.FLAG, Kind.PHOTO):
        return None
    pattern = _QUICK[field.name]
    assert pattern is not None
    return re.compile(pattern.pattern, re.IGNORECASE)


_QUICK_COLUMN = {f.name: _column_pattern(f) for f in FIELDS}
# What text must not hold, ASCII first (the common case, and a faster search), and the
# characters that send a value the long way: '?' (warned about), spaces in usernames.
_ASCII_NOT_TEXT = re.compile(r"[\x00-\x09\x0b-\x1f\x7f<>?]")  # the joining \n aside
_ASCII_NOT_USERNAME = re.compile(r"[\x00-\x09\x0b-\x20\x7f<>?]")
_NOT_TEXT = regex.compile(f"[{_BANNED}?]")
_NOT_USERNAME = regex.compile(f"[{_BANNED}?\\p{{Z}}\\s]")


def quick_column(field: Field, values: list[str]) -> bool:
    """`quick` for a whole column of trimmed values at once (empty meaning "no value"): a few
    searches over the joined column instead of a Python call per value."""
    if not values:
        return True
    if field.kind is Kind.EMAIL:  # `_plain_email` of each value, its steps column by column
        return (
            all(map(_PLAIN_EMAIL.fullmatch, values))
            and max(map(len, values)) <= 254
            and all(value.index("@") <= 64 for value in values)
            and _NOT_A_MAIL_TLD.search("\n".join(values)) is None
        )
    joined = "\n".join(values)
    if joined.count("\n") != len(values) - 1 or not _nfc(joined):
        return False
    if field.kind in (Kind.TEXT, Kind.USERNAME):
        username = field.kind is Kind.USERNAME
        if joined.isascii():
            banned = (_ASCII_NOT_USERNAME if username else _ASCII_NOT_TEXT).search(joined)
        else:  # each distinct character once (a column holds few), the joining \n aside
            distinct = "".join(set(joined) - {"\n"})
            banned = (_NOT_USERNAME if username else _NOT_TEXT).search(distinct)
        if banned:
            return False
        if field.name in KEY_WIDTH and not joined.isascii():
            width = KEY_WIDTH[field.name]
            if any(key_problem(v, width) for v in values if not v.isascii()):
                return False
    else:
        pattern = _QUICK_COLUMN[field.name]
        if (
            pattern is None
            or not joined.isascii()
            or not all(map(pattern.fullmatch, filter(None, values)))
        ):
            return False
        if field.kind is Kind.FLAG:
            return True
    lengths = [n for n in map(len, values) if n]
    if field.required and len(lengths) != len(values):
        return False
    return not lengths or (
        min(lengths) >= field.min_len and max(lengths) <= (field.max_len or max(lengths))
    )


def check_typed(
    field: Field, value: Any, source: Source = Source.TEMPLATE
) -> tuple[Any, Problem | None]:
    """`check` for values that arrive typed (JSON): booleans for flags, strings for the rest;
    None or "" means "no value"."""
    if value is None or value == "":
        return check(field, None, source)
    if field.kind is Kind.FLAG:
        if isinstance(value, bool):
            return value, None
        return None, Problem("invalid_type", "must be true or false")
    if not isinstance(value, str):
        return None, Problem("invalid_type", "must be a string")
    return check(field, value, source)
