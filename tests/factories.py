"""Building CSV files the way exports write them."""

from collections.abc import Iterable, Mapping

from roster.domain.fields import FIELDS

COLUMNS = tuple(f.column for f in FIELDS)


def person(n: int, **overrides: str) -> dict[str, str]:
    """A valid row for person n, in template columns."""
    row = {
        "CSV_USERNAME": f"user{n:06d}",
        "CSV_FIRSTNAME": "Jan",
        "CSV_SURNAME": f"Jansen{n}",
        "CSV_DISPLAYNAME": f"Jansen {n}",
        "CSV_TITLE": "Manager",
        "CSV_PHONE": "+3120123456",
        "CSV_MOBILE": "+3165123456",
        "CSV_DEPARTMENT": "Support",
        "CSV_EMAIL": f"user{n:06d}@example.com",
        "CSV_EHBO": "1" if n % 7 == 0 else "0",
        "CSV_BHV": "1" if n % 11 == 0 else "0",
        "CSV_PROFILEPHOTO": f"user{n}.jpg",
    }
    row.update(overrides)
    return row


def csv_text(
    rows: Iterable[Mapping[str, str]],
    columns: Iterable[str] = COLUMNS,
    sep: str = ";",
    quote: bool = True,
    newline: str = "\r\n",
) -> str:
    columns = list(columns)

    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if quote else value

    lines = [sep.join(cell(c) for c in columns)]
    lines += [sep.join(cell(row.get(c, "")) for c in columns) for row in rows]
    return newline.join(lines) + newline


def csv_bytes(rows: Iterable[Mapping[str, str]], **options: object) -> bytes:
    return csv_text(rows, **options).encode()  # type: ignore[arg-type]


def people(count: int, start: int = 0) -> list[dict[str, str]]:
    return [person(n) for n in range(start, start + count)]
