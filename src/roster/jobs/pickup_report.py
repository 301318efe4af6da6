"""The plain-text report a pickup leaves in the drop box's results/ folder."""

import os
from pathlib import Path

from roster.files import private_opener
from roster.jobs.dropbox_files import Folders, readable, unique
from roster.jobs.imports import ImportReport
from roster.store import dropboxes
from roster.store.imports import ImportStatus

HEADLINES = {
    "applied": "APPLIED",
    "held": "HELD: nothing was changed; it waits for an admin's approval",
    "rejected": "REJECTED: nothing was changed",
    "skipped": "SKIPPED: the file is the same as at the last pickup; nothing to do",
    "approved": "APPLIED after an admin's approval",
}


def _counts(counts: dict[str, int]) -> str:
    return (
        f"added {counts.get('added', 0)}, updated {counts.get('updated', 0)}, "
        f"removed {counts.get('removed', 0)}, unchanged {counts.get('unchanged', 0)}, "
        f"invalid rows {counts.get('invalid', 0)}"
    )


def render_report(
    box: dropboxes.Dropbox,
    when: str,
    report: ImportReport,
    ignored: list[str],
    headline: str | None = None,
) -> str:
    """The plain-text report an uploader reads in results/."""
    lines = [
        "Roster: pickup report",
        f"File:     {box.file_name}",
        f"Time:     {readable(when)} ({box.timezone})",
        f"Result:   {headline or HEADLINES.get(report.status, report.status.upper())}",
        f"Import:   {report.import_id}",
        "",
    ]
    if report.status == ImportStatus.APPLIED:
        lines.append(f"Changes:  {_counts(report.counts)}")
    elif report.planned and report.held:
        lines.append(f"The file would have: {_counts(report.planned)}")
    if report.held:
        lines += [
            "",
            f"Why it is held: {report.held}.",
            "An admin approves it in the Control Centre or with",
            f"  roster sync approve --tenant {box.slug} {report.import_id}",
            "and a newer file replaces it.",
        ]
    left_out = report.problems.left_out()
    if left_out:
        lines += ["", left_out]
    if report.errors:
        lines += ["", "Errors (the users of these rows were left as they were):"]
        lines += [f"  {issue}" for issue in report.errors]
    if report.warnings:
        lines += ["", "Warnings:"]
        lines += [f"  {issue}" for issue in report.warnings]
    if ignored:
        lines += ["", f'Ignored (only "{box.file_name}" is picked up):']
        lines += [f"  {name}" for name in ignored]
    return "\n".join(lines) + "\n"


def write_report(
    folders: Folders,
    box: dropboxes.Dropbox,
    stamp: str,
    report: ImportReport,
    ignored: list[str],
    headline: str | None = None,
) -> Path:
    stem = box.file_name.removesuffix(".csv")
    path = unique(folders.results(box.slug) / f"{stamp} {stem} - report.txt")
    staging = folders.uploads / f"report-{report.import_id}"
    with open(staging, "w", encoding="utf-8", opener=private_opener) as out:
        out.write(render_report(box, stamp, report, ignored, headline))
    os.replace(staging, path)  # the uploader never reads half a report
    return path
