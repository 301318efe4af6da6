"""Problems found in input, as values with a location."""

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    row: int | None  # the row a spreadsheet shows (header = 1); None for the file as a whole
    column: str | None  # e.g. "CSV_EMAIL"
    code: str  # stable, for scripts
    message: str  # for people
    severity: Severity = "error"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["severity"]
        return data

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        if self.column:
            where += f", {self.column}"
        return f"{where}: {self.message} [{self.code}]"
