"""The `roster` command as a script calls it: arguments, output, exit codes."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roster.cli import app
from roster.domain import csvfile
from tests.conftest import free_port
from tests.factories import csv_bytes, people, person

runner = CliRunner()


def roster(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def org(cli_env):
    slug = f"c-{uuid.uuid4().hex[:8]}"
    result = roster("tenant", "create", slug, "--name", "Acme B.V.")
    assert result.exit_code == 0, result.output
    return slug


def write(tmp_path: Path, rows, name="users.csv", **options) -> str:
    path = tmp_path / name
    path.write_bytes(csv_bytes(rows, **options))
    return str(path)


def import_json(path, org, *extra):
    result = roster("import", path, "--tenant", org, "--json", "--quiet", *extra)
    return result.exit_code, json.loads(result.stdout)


def test_import_json_report_and_users_list(org, tmp_path):
    code, report = import_json(write(tmp_path, people(3)), org, "--mode", "add")
    assert code == 0
    assert report["status"] == "applied"
    assert report["counts"] == {
        "added": 3,
        "updated": 0,
        "removed": 0,
        "unchanged": 0,
        "invalid": 0,
    }
    assert report["errors"] == [] and report["warnings"] == []
    listed = json.loads(roster("users", "list", "--tenant", org, "--json").stdout)
    assert [u["username"] for u in listed] == ["user000000", "user000001", "user000002"]
    assert set(listed[0]) == {
        "id",
        "username",
        "first_name",
        "surname",
        "display_name",
        "title",
        "phone",
        "mobile",
        "department",
        "email",
        "first_aider",
        "emergency_responder",
        "profile_photo",
        "active",
        "role",
    }
    assert listed[0]["first_aider"] is True and listed[0]["emergency_responder"] is True


def test_errors_are_located_and_exit_1(org, tmp_path):
    rows = [person(1), person(2, CSV_EMAIL="not-an-address")]
    code, report = import_json(write(tmp_path, rows), org, "--mode", "replace")
    assert code == 1 and report["status"] == "rejected"
    (error,) = report["errors"]
    assert (error["row"], error["column"], error["code"]) == (3, "CSV_EMAIL", "invalid_email")
    # The offending value, and who the row is about.
    assert (error["value"], error["person"]) == ("not-an-address", "Jansen 2")
    assert set(error) == {"row", "column", "code", "message", "value", "person"}
    assert json.loads(roster("users", "list", "--tenant", org, "--json").stdout) == []


def test_file_level_error_has_null_row(org, tmp_path):
    code, report = import_json(write(tmp_path, people(2), sep=","), org, "--mode", "add")
    assert code == 1 and report["errors"][0]["row"] is None
    assert report["errors"][0]["code"] == "wrong_separator"


def test_dry_run_of_a_held_plan_exits_1(org, tmp_path):
    import_json(write(tmp_path, people(20)), org, "--mode", "add")
    code, report = import_json(write(tmp_path, people(5)), org, "--mode", "replace", "--dry-run")
    assert code == 1 and report["status"] == "dry_run" and "held_reason" in report
    assert len(report["plan"]["removed"]) == 15


def test_dry_run_exit_0_and_plan(org, tmp_path):
    code, report = import_json(write(tmp_path, people(2)), org, "--mode", "add", "--dry-run")
    assert code == 0 and report["status"] == "dry_run"
    assert report["plan"]["added"] == ["user000000", "user000001"]
    assert json.loads(roster("users", "list", "--tenant", org, "--json").stdout) == []


def test_held_exits_1_and_force_applies(org, tmp_path):
    import_json(write(tmp_path, people(20)), org, "--mode", "add")
    code, report = import_json(write(tmp_path, people(5)), org, "--mode", "replace")
    assert code == 1 and report["status"] == "held" and "15 of 20" in report["held_reason"]
    code, report = import_json(write(tmp_path, people(5)), org, "--mode", "replace", "--force")
    assert code == 0 and report["counts"]["removed"] == 15


def test_partial_applies_valid_rows(org, tmp_path):
    rows = [person(1), person(2, CSV_BHV="7")]
    code, report = import_json(write(tmp_path, rows), org, "--mode", "add", "--partial")
    assert code == 1  # applied, but the file had errors: scripts must notice
    assert report["status"] == "applied" and report["counts"]["added"] == 1
    assert report["counts"]["invalid"] == 1


def test_human_output_names_rows(org, tmp_path):
    result = roster(
        "import", write(tmp_path, [person(1, CSV_EHBO="x")]), "--tenant", org, "--mode", "add", "-q"
    )
    assert result.exit_code == 1
    assert "rejected" in result.stdout and "row 2, CSV_EHBO" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["import", "missing.csv", "--tenant", "x", "--mode", "add"],
        ["import", "users.csv", "--tenant", "x", "--mode", "merge"],
        ["import", "users.csv", "--mode", "add"],
        ["users", "list"],
    ],
)
def test_wrong_usage_exits_2(args, cli_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, people(1))
    assert roster(*args).exit_code == 2


def test_unknown_organization_exits_2(cli_env, tmp_path):
    result = roster("import", write(tmp_path, people(1)), "--tenant", "nope", "--mode", "add")
    assert result.exit_code == 2 and "no organization 'nope'" in result.output


def test_template(cli_env):
    result = roster("template")
    assert result.exit_code == 0 and result.stdout_bytes == csvfile.template().encode()
    assert result.stdout.startswith('"CSV_USERNAME";"CSV_FIRSTNAME"')


def test_users_export_writes_the_user_list_that_a_replace_reads_back_unchanged(org, tmp_path):
    rows = [
        person(1, CSV_PHONE="+31 6 12345678", CSV_DEPARTMENT="-Facilities", CSV_TITLE=""),
        person(2, CSV_FIRSTNAME="Zoë", CSV_DISPLAYNAME='Zoë "Z"; M', CSV_EHBO=""),
    ]
    assert import_json(write(tmp_path, rows), org, "--mode", "add")[0] == 0
    result = roster("users", "export", "--tenant", org)
    assert result.exit_code == 0, result.output
    data = result.stdout_bytes
    header = csvfile.template().split("\r\n")[0]
    assert data.startswith(b"\xef\xbb\xbf" + header.encode() + b"\r\n")
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[1].startswith('"user000001";"Jan";"Jansen1";"Jansen 1";"";"\'+31 6 12345678";')
    assert '"\'-Facilities"' in lines[1] and '"Zoë ""Z""; M"' in lines[2] and lines[3] == ""
    # --output: the same bytes, in a file only its owner reads; nothing on stdout.
    out = tmp_path / "flexwhere - users.csv"
    result = roster("users", "export", "--tenant", org, "--output", str(out))
    assert result.exit_code == 0 and result.stdout_bytes == b""
    assert out.read_bytes() == data and out.stat().st_mode & 0o777 == 0o600
    code, report = import_json(str(out), org, "--mode", "replace")
    assert code == 0 and report["status"] == "applied"
    assert report["counts"] == dict.fromkeys(("added", "updated", "removed", "invalid"), 0) | {
        "unchanged": 2
    }
    assert report["error_count"] == 0 and report["warning_count"] == 0


def test_users_export_of_no_organization_exits_2_and_leaves_the_file_alone(cli_env, tmp_path):
    out = tmp_path / "users.csv"
    out.write_bytes(b"yesterday's list")
    result = roster("users", "export", "--tenant", "nope", "--output", str(out))
    assert result.exit_code == 2 and "no organization 'nope'" in result.output
    assert out.read_bytes() == b"yesterday's list" and sorted(tmp_path.iterdir()) == [out]


def test_imports_list_and_undo(org, tmp_path):
    import_json(write(tmp_path, people(3)), org, "--mode", "add")
    code, report = import_json(
        write(tmp_path, [person(0, CSV_TITLE="Boss"), *people(2, 1)]), org, "--mode", "replace"
    )
    assert code == 0
    history = json.loads(roster("imports", "list", "--tenant", org, "--json").stdout)
    assert [h["status"] for h in history] == ["applied", "applied"]
    assert history[0]["id"] == report["import_id"]
    assert history[0]["channel"] == "cli" and history[0]["actor"].startswith("cli:")
    undo = roster("imports", "undo", report["import_id"])
    assert undo.exit_code == 0, undo.output
    listed = json.loads(roster("users", "list", "--tenant", org, "--json").stdout)
    assert listed[0]["title"] == "Manager"
    again = roster("imports", "undo", report["import_id"])
    assert again.exit_code == 1 and "undone" in again.output


def test_history_shows_an_import_applied_again_once_its_undo_is_undone(org, tmp_path):
    _, report = import_json(write(tmp_path, people(2)), org, "--mode", "add")
    undo = roster("imports", "undo", report["import_id"], "--json")
    assert undo.exit_code == 0, undo.output
    redo = roster("imports", "undo", json.loads(undo.stdout)["import_id"], "--json")
    assert redo.exit_code == 0, redo.output
    assert len(json.loads(roster("users", "list", "--tenant", org, "--json").stdout)) == 2
    history = json.loads(roster("imports", "list", "--tenant", org, "--json").stdout)
    assert [(h["mode"], h["status"]) for h in history] == [
        ("undo", "applied"),
        ("undo", "undone"),
        ("add", "applied"),
    ]


def test_undo_blocked_says_which_users(org, tmp_path):
    import_json(write(tmp_path, people(2)), org, "--mode", "add")
    _, first = import_json(write(tmp_path, [person(0, CSV_TITLE="Boss")]), org, "--mode", "add")
    import_json(write(tmp_path, [person(0, CSV_TITLE="Chief")]), org, "--mode", "add")
    result = roster("imports", "undo", first["import_id"])
    assert result.exit_code == 1 and "user000000" in result.output


def test_oversized_file_is_refused_before_reading(org, tmp_path, monkeypatch):
    from roster.settings import get_settings

    monkeypatch.setenv("ROSTER_MAX_IMPORT_BYTES", "1000")
    get_settings.cache_clear()
    code, report = import_json(write(tmp_path, people(50)), org, "--mode", "add")
    assert code == 1 and report["errors"][0]["code"] == "file_too_large"
    assert report["counts"] == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 0,
        "invalid": 0,
    }
    history = json.loads(roster("imports", "list", "--tenant", org, "--json").stdout)
    assert [h["status"] for h in history] == ["rejected"]
    unknown = roster("import", write(tmp_path, people(50)), "--tenant", "nope", "--mode", "add")
    assert unknown.exit_code == 2


def _cli(env, *args, **popen):
    return subprocess.Popen([sys.executable, "-m", "roster", *args], env=env, **popen)


def test_real_process_exit_codes(org, cli_env, tmp_path):
    path = write(tmp_path, people(2))
    ok = _cli(
        cli_env,
        "import",
        path,
        "--tenant",
        org,
        "--mode",
        "add",
        "--json",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, _ = ok.communicate(timeout=120)
    assert ok.returncode == 0 and json.loads(out)["counts"]["added"] == 2
    bad = _cli(
        cli_env,
        "import",
        path,
        "--tenant",
        org,
        "--mode",
        "sideways",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    bad.communicate(timeout=120)
    assert bad.returncode == 2


@pytest.mark.parametrize("mode", ["first import", "replace"])
def test_process_killed_mid_apply_leaves_all_old(org, cli_env, tmp_path, mode):
    """SIGKILL while the progress output shows the apply half done: nothing of it stays."""
    count = 20000
    if mode == "replace":
        code, _ = import_json(write(tmp_path, people(count)), org, "--mode", "add")
        assert code == 0
        rows = [person(n, CSV_TITLE="Director") for n in range(count)]
    else:
        rows = people(count)
    path = write(tmp_path, rows, name="big.csv")
    env = {**cli_env, "PYTHONUNBUFFERED": "1"}
    process = _cli(
        env,
        "import",
        path,
        "--tenant",
        org,
        "--mode",
        "replace",
        "--force",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed_at = None
    assert process.stderr is not None
    for line in process.stderr:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "applying":
            done, total = map(int, parts[1].split("/"))
            if 0 < done < total:
                os.kill(process.pid, signal.SIGKILL)
                killed_at = (done, total)
                break
    process.wait(timeout=120)
    assert killed_at is not None, "the import finished before it could be killed"
    assert process.returncode == -signal.SIGKILL
    listed = json.loads(roster("users", "list", "--tenant", org, "--json").stdout)
    if mode == "replace":
        assert len(listed) == count and {u["title"] for u in listed} == {"Manager"}
    else:
        assert listed == []
    history = json.loads(roster("imports", "list", "--tenant", org, "--json").stdout)
    assert len(history) == (1 if mode == "replace" else 0)


def test_an_import_lists_the_first_problems_and_says_how_many_in_all(org, tmp_path, monkeypatch):
    from roster.settings import get_settings

    monkeypatch.setenv("ROSTER_MAX_REPORTED_PROBLEMS", "60")
    get_settings.cache_clear()
    rows = [person(n, CSV_EMAIL="same@example.com") for n in range(300)]
    path = write(tmp_path, rows)
    code, report = import_json(path, org, "--mode", "add", "--dry-run")
    assert code == 1 and report["status"] == "dry_run"
    assert (report["error_count"], report["warning_count"], len(report["errors"])) == (300, 0, 60)
    assert report["counts"]["invalid"] == 300
    assert report["errors"][0]["message"] == (
        "CSV_EMAIL is the same as on row 3: 300 rows share this e-mail address"
    )
    printed = roster("import", path, "--tenant", org, "--mode", "add", "--quiet")
    assert printed.exit_code == 1
    assert "errors (300):" in printed.stdout
    assert "... and 250 more (--json lists the first 60 errors)" in printed.stdout
    code, rejected = import_json(path, org, "--mode", "add")
    assert rejected["status"] == "rejected" and rejected["error_count"] == 300
    history = json.loads(roster("imports", "list", "--tenant", org, "--json").stdout)
    assert [h["status"] for h in history] == ["rejected", "rejected"]
    assert history[0]["report"]["error_count"] == 300 and len(history[0]["report"]["errors"]) == 60


def _ended_cleanly(result, org_rows) -> None:
    """Exit 1 with one line on stderr: no traceback, and none of the file's users in it."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and "user000001" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert all(row["CSV_EMAIL"] not in result.output for row in org_rows)


UNIQUE, NOT_NULL = sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_NOTNULL


def _refusal(code: int) -> sqlite3.IntegrityError:
    """The driver's error for a constraint's refusal, as SQLite raises it."""
    error = sqlite3.IntegrityError("constraint failed")
    error.sqlite_errorcode = code
    return error


def test_another_constraint_is_a_fault_not_a_race(org, tmp_path, monkeypatch):
    """Only a unique value taken meanwhile is tried again; any other refusal is raised at once."""
    import sqlalchemy as sa

    from roster.store import directory

    tries = []

    async def refused(conn, tenant_id, plan, **options):
        tries.append(plan)
        raise sa.exc.IntegrityError("INSERT INTO users ...", [], _refusal(NOT_NULL))

    monkeypatch.setattr(directory, "apply", refused)
    result = runner.invoke(
        app, ["import", write(tmp_path, people(2)), "--tenant", org, "--mode", "add", "-q"]
    )
    assert result.exit_code == 1 and len(tries) == 1
    assert "kept changing" not in result.output


def test_an_import_that_keeps_losing_to_other_writers_ends_with_one_line(
    org, tmp_path, monkeypatch
):
    """Another writer (SCIM, say) takes a username or changes a user each time the import is
    applied: after its tries the import ends with a clean error, nothing written."""
    import sqlalchemy as sa

    from roster.jobs import imports as import_jobs
    from roster.store import directory

    tries = []

    async def clashing(conn, tenant_id, plan, **options):
        tries.append(plan)
        rows = [a.values for a in plan.added]  # as a unique index's refusal lists them
        raise sa.exc.IntegrityError("INSERT INTO users ...", rows, _refusal(UNIQUE))

    monkeypatch.setattr(directory, "apply", clashing)
    rows = people(3)
    path = write(tmp_path, rows)
    result = runner.invoke(app, ["import", path, "--tenant", org, "--mode", "add", "--quiet"])
    _ended_cleanly(result, rows)
    assert "kept changing" in result.stderr and len(tries) == import_jobs.ATTEMPTS
    as_json = runner.invoke(app, ["import", path, "--tenant", org, "--mode", "add", "--json"])
    assert as_json.exit_code == 1 and "Traceback" not in as_json.output
    assert json.loads(as_json.stdout)["error"]["code"] == "concurrent_change"
    monkeypatch.undo()
    assert json.loads(roster("users", "list", "--tenant", org, "--json").stdout) == []


def test_an_import_whose_connection_drops_ends_with_one_line(org, tmp_path, monkeypatch):
    """The database ends the import's connection mid-transaction (PostgreSQL: a real
    termination; SQLite: another process's lock held past the busy timeout)."""
    import sqlalchemy as sa

    from roster.store import db, directory

    applying = directory.apply
    holder = None

    async def dropped(conn, *args, **options):
        await conn.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return await applying(conn, *args, **options)

    if POSTGRES := os.environ.get("ROSTER_DATABASE_URL", "").startswith("postgres"):
        monkeypatch.setattr(directory, "apply", dropped)
    else:
        monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
        database = os.environ["ROSTER_DATABASE_URL"].removeprefix("sqlite:///")
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    rows = people(3)
    path = write(tmp_path, rows)
    try:
        result = runner.invoke(app, ["import", path, "--tenant", org, "--mode", "add", "-q"])
        as_json = runner.invoke(app, ["import", path, "--tenant", org, "--mode", "add", "--json"])
    finally:
        if holder is not None:
            holder.close()
    _ended_cleanly(result, rows)
    assert "database is unavailable" in result.stderr, result.stderr
    terminated = "terminating connection due to administrator command" in result.stderr
    assert "try again" in result.stderr and bool(POSTGRES) == terminated
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "unavailable"
    monkeypatch.undo()
    assert json.loads(roster("users", "list", "--tenant", org, "--json").stdout) == []


def test_an_unreachable_database_ends_a_command_with_one_line(cli_env, monkeypatch):
    from roster.settings import get_settings

    monkeypatch.setenv("ROSTER_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    get_settings.cache_clear()
    result = roster("tenant", "list", "--json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "database is unavailable" in result.stderr


# Runs `roster` with the arguments after `-c`, then lists the modules it loaded on stderr.
LOADED = """
import sys
from roster.cli import main
sys.argv = ["roster", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def loaded(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", LOADED, *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ)


def test_help_loads_no_command_s_machinery():
    """`roster --help` answers at once: the store, the jobs, migrations, SSH and password
    hashing are imported by the commands that use them, when they run."""
    helped = loaded("--help")
    assert "Organizations." in helped.stdout
    heavy = ("alembic", "asyncssh", "argon2", "asyncpg", "psycopg", "roster.store", "roster.jobs")
    assert [m for m in helped.stderr.split() if m.startswith(heavy)] == []


def test_a_command_on_a_current_schema_migrates_nothing(org, cli_env, database_url):
    """Every command checks the schema; a current one costs a query, not the migrations. On
    SQLite no PostgreSQL driver is loaded either."""
    listed = loaded("users", "list", "--tenant", org, "--json")
    assert json.loads(listed.stdout) == []
    assert "alembic" not in listed.stderr.split()
    drivers = [m for m in listed.stderr.split() if m.startswith(("asyncpg", "psycopg"))]
    assert drivers == [] if database_url.startswith("sqlite") else "asyncpg" in drivers


def test_admin_create_makes_a_present_user_admin(org, tmp_path):
    assert (
        roster("import", write(tmp_path, people(2)), "--tenant", org, "--mode", "add").exit_code
        == 0
    )
    password = "correct horse battery staple\n"
    nobody = runner.invoke(
        app, ["admin", "create", "--tenant", org, "--email", "nobody@example.com"], input=password
    )
    assert nobody.exit_code == 2 and "has no user nobody@example.com" in nobody.output
    made = runner.invoke(
        app, ["admin", "create", "--tenant", org, "--email", "USER000001@example.com"],
        input=password,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert f"made admin USER000001@example.com of {org}" in made.output
    listed = json.loads(roster("users", "list", "--tenant", org, "--json").stdout)
    assert {u["username"]: u["role"] for u in listed} == {
        "user000000": "user",
        "user000001": "admin",
    }
