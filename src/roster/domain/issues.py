"""Problems found in input, as values with a location."""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    row: int | None  # the row a spreadsheet shows (header = 1); None for the file as a whole
    column: str | None  # e.g. "CSV_EMAIL"
    code: str  # stable, for scripts
    message: str  # for people
    severity: Severity = "error"
    value: str | None = None  # the offending value as the file has it (an excerpt when long)
    person: str | None = None  # who the row is about, as a reader knows them

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["severity"]
        return data

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        if self.column:
            where += f", {self.column}"
        return f"{where}: {self.message} [{self.code}]"


EXCERPT = 100  # characters of an offending value kept: a report stays small whatever the file


def excerpt(value: str) -> str:
    return value if len(value) <= EXCERPT else value[: EXCERPT - 1] + "…"


def _rank(issue: Issue) -> tuple[bool, bool]:
    """What is kept first: the file's own problems, then errors, then warnings."""
    return issue.row is not None, issue.severity != "error"


_RANKS = ((False, False), (False, True), (True, False), (True, True))


@dataclass(frozen=True, slots=True)
class Problems:
    """The problems of one import as kept and shown: at most a bounded number of them, with the
    totals, so a report stays a small multiple of its file however many rows share a problem."""

    errors: Sequence[Issue] = ()
    warnings: Sequence[Issue] = ()
    error_total: int = 0
    warning_total: int = 0

    @classmethod
    def of(cls, issues: Sequence[Issue], limit: int) -> "Problems":
        """The first `limit` issues (in their order), the file's own and errors before
        warnings."""
        chosen: list[int] = []  # linear: one pass a rank, each stopping at the limit
        for rank in _RANKS:
            if len(chosen) >= limit:
                break
            for n, issue in enumerate(issues):
                if _rank(issue) == rank:
                    chosen.append(n)
                    if len(chosen) >= limit:
                        break
        kept = [issues[n] for n in sorted(chosen)]
        return cls(
            [i for i in kept if i.severity == "error"],
            [i for i in kept if i.severity == "warning"],
            sum(i.severity == "error" for i in issues),
            sum(i.severity == "warning" for i in issues),
        )

    @classmethod
    def stored(cls, report: Mapping[str, Any]) -> "Problems":
        """From an import's recorded report (`as_json`'s keys); a report kept before the totals
        were recorded holds every problem."""
        errors = [_issue(i, "error") for i in report.get("errors") or ()]
        warnings = [_issue(i, "warning") for i in report.get("warnings") or ()]
        return cls(errors, warnings, stored_total(report, "error"), stored_total(report, "warning"))

    @property
    def issues(self) -> list[Issue]:
        return [*self.errors, *self.warnings]

    @property
    def rows(self) -> set[int]:
        """The rows the kept problems are on."""
        return {i.row for i in self.issues if i.row is not None}

    def naming(self, people: Mapping[int, str]) -> "Problems":
        """The same problems, each on a row of `people` naming the person it is about."""

        def named(issues: Sequence[Issue]) -> list[Issue]:
            return [
                replace(i, person=people[i.row]) if i.row is not None and i.row in people else i
                for i in issues
            ]

        return replace(self, errors=named(self.errors), warnings=named(self.warnings))

    @property
    def total(self) -> int:
        return self.error_total + self.warning_total

    @property
    def shown(self) -> int:
        return len(self.errors) + len(self.warnings)

    @property
    def truncated(self) -> bool:
        return self.shown < self.total

    def left_out(self) -> str | None:
        """The sentence that tells a reader problems are not listed; None when all of them are."""
        if not self.truncated:
            return None
        return (
            f"Only the first {self.shown:,} of {self.total:,} problems are listed "
            f"({self.error_total:,} error(s) and {self.warning_total:,} warning(s) in all)."
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "errors": [i.as_dict() for i in self.errors],
            "warnings": [i.as_dict() for i in self.warnings],
            "error_count": self.error_total,
            "warning_count": self.warning_total,
        }


def stored_total(report: Mapping[str, Any], severity: Severity) -> int:
    """How many errors or warnings a recorded report found, without reading them."""
    kept = report.get(f"{severity}s") or ()
    return int(report.get(f"{severity}_count", len(kept)))


def _issue(stored: Mapping[str, Any], severity: Severity) -> Issue:
    return Issue(
        stored.get("row"),
        stored.get("column"),
        str(stored.get("code", "")),
        str(stored.get("message", "")),
        severity,
        stored.get("value"),
        stored.get("person"),
    )
