"""`roster sftp` and `roster sync` as an operator types them."""

import json
import signal
import subprocess
import sys
import uuid

import pytest
from typer.testing import CliRunner

from roster.cli import app
from roster.domain.passwords import verify
from roster.settings import get_settings
from tests.factories import csv_bytes, people
from tests.sftp.conftest import make_key

runner = CliRunner()
FILE = "flexwhere - users.csv"


def roster(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def said(result) -> str:
    """The output as one line, however the console wrapped it."""
    return " ".join(result.output.split())


@pytest.fixture
def org(cli_env):
    slug = f"s-{uuid.uuid4().hex[:8]}"
    assert roster("tenant", "create", slug, "--name", "Acme").exit_code == 0
    result = roster("sftp", "enable", "--tenant", slug)
    assert result.exit_code == 0, result.output
    return slug


def show(org: str) -> dict:
    result = roster("sftp", "show", "--tenant", org, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_enable_shows_how_to_connect(org):
    shown = show(org)
    assert shown["username"] == org and shown["enabled"] is True
    assert shown["host_key"].startswith("SHA256:") and shown["port"] == 2222
    assert shown["file_name"] == FILE and shown["daily_time"] == "02:00"
    assert shown["password"] is False and shown["keys"] == []
    assert (get_settings().data_dir / "dropbox" / org / "results").is_dir()


def test_an_organization_without_a_drop_box_is_told_so(cli_env):
    slug = f"s-{uuid.uuid4().hex[:8]}"
    roster("tenant", "create", slug, "--name", "Acme")
    result = roster("sftp", "show", "--tenant", slug)
    assert result.exit_code == 2 and "roster sftp enable" in said(result)


def test_password_from_stdin_is_stored_hashed(org, database_url):
    weak = roster("sftp", "password", "--tenant", org, stdin="short\n")
    assert weak.exit_code == 2 and "at least 12 characters" in said(weak)
    assert show(org)["password"] is False
    result = roster("sftp", "password", "--tenant", org, stdin="a long pass phrase\n")
    assert result.exit_code == 0 and "a long pass phrase" not in result.output
    assert show(org)["password"] is True
    assert roster("sftp", "password", "--tenant", org, "--clear").exit_code == 0
    assert show(org)["password"] is False


def test_keys_are_added_listed_and_removed(org, tmp_path):
    key = make_key(tmp_path / "k")
    added = roster("sftp", "key", "add", "--tenant", org, f"{key}.pub")
    assert added.exit_code == 0, added.output
    [listed] = show(org)["keys"]
    assert listed["comment"] == "uploader" and listed["fingerprint"].startswith("SHA256:")
    again = roster("sftp", "key", "add", "--tenant", org, f"{key}.pub")
    assert again.exit_code == 2 and "already authorized" in said(again)
    removed = roster("sftp", "key", "remove", "--tenant", org, listed["fingerprint"])
    assert removed.exit_code == 0 and show(org)["keys"] == []
    gone = roster("sftp", "key", "remove", "--tenant", org, listed["fingerprint"])
    assert gone.exit_code == 2 and "no authorized key" in said(gone)


def test_a_file_that_is_not_a_public_key_is_refused(org, tmp_path):
    private = make_key(tmp_path / "k")
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello")
    result = roster("sftp", "key", "add", "--tenant", org, str(not_a_key))
    assert result.exit_code == 2 and "is not an OpenSSH public key" in said(result)
    mistake = roster("sftp", "key", "add", "--tenant", org, str(private))
    assert mistake.exit_code == 2 and "is a private key: give its .pub file" in said(mistake)
    assert show(org)["keys"] == []


def test_settings_are_checked_and_move_the_daily_run(org):
    bad_time = roster("sftp", "settings", "--tenant", org, "--daily-time", "25:00")
    assert bad_time.exit_code == 2 and "HH:MM" in said(bad_time)
    bad_zone = roster("sftp", "settings", "--tenant", org, "--timezone", "Mars/Olympus")
    assert bad_zone.exit_code == 2 and "IANA" in said(bad_zone)
    bad_name = roster("sftp", "settings", "--tenant", org, "--file-name", "../users.csv")
    assert bad_name.exit_code == 2 and "slashes" in said(bad_name)
    result = roster(
        "sftp", "settings", "--tenant", org, "--daily-time", "06:30",
        "--timezone", "Europe/Amsterdam", "--process-on-upload", "--file-name", "ad.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = show(org)
    assert (shown["daily_time"], shown["timezone"], shown["file_name"]) == (
        "06:30",
        "Europe/Amsterdam",
        "ad.csv",
    )
    assert shown["process_on_upload"] is True
    assert shown["next_daily_pickup"][11:16] in ("05:30", "04:30")  # 06:30 in Amsterdam


def test_sync_run_status_and_approve(org):
    folder = get_settings().data_dir / "dropbox" / org
    assert roster("sync", "run", "--tenant", org).output.strip() == "there is no file to pick up"
    (folder / FILE).write_bytes(csv_bytes(people(30)))
    ran = roster("sync", "run", "--tenant", org, "--json")
    assert ran.exit_code == 0 and json.loads(ran.stdout)["counts"]["added"] == 30
    (folder / FILE).write_bytes(csv_bytes(people(3)))
    held = roster("sync", "run", "--tenant", org, "--json")
    assert held.exit_code == 1
    held_id = json.loads(held.stdout)["import_id"]
    status = json.loads(roster("sync", "status", "--tenant", org, "--json").stdout)
    assert status["last_result"]["status"] == "held"
    assert [h["import_id"] for h in status["held"]] == [held_id]
    assert status["warnings"] == []
    approved = roster("sync", "approve", "--tenant", org, held_id)
    assert approved.exit_code == 0, approved.output
    listed = json.loads(roster("users", "list", "--tenant", org, "--json").stdout)
    assert len(listed) == 3
    twice = roster("sync", "approve", "--tenant", org, held_id)
    assert twice.exit_code == 1 and "not held" in said(twice)


# `roster sync run` in a process that SIGKILLs itself at the first step after its import commits
KILLED_AFTER_THE_COMMIT = """
import os, signal, sys
from roster.cli import app
from roster.jobs import pickup
pickup.write_report = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
app(["sync", "run", "--tenant", sys.argv[1]])
"""


def test_a_pickup_killed_after_its_import_committed_is_not_imported_again(org, cli_env):
    folder = get_settings().data_dir / "dropbox" / org
    (folder / FILE).write_bytes(csv_bytes(people(3)))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_THE_COMMIT, org], env=cli_env, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [recorded] = json.loads(roster("imports", "list", "--tenant", org, "--json").stdout)
    assert recorded["status"] == "applied" and list((folder / "results").iterdir()) == []

    again = roster("sync", "run", "--tenant", org, "--json")  # the restarted server's pickup
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["import_id"] == recorded["id"]
    history = json.loads(roster("imports", "list", "--tenant", org, "--json").stdout)
    assert [h["id"] for h in history] == [recorded["id"]]
    assert len(json.loads(roster("users", "list", "--tenant", org, "--json").stdout)) == 3
    [report] = (folder / "results").iterdir()
    text = report.read_text()
    assert f"Import:   {recorded['id']}" in text and "Changes:  added 3, updated 0" in text
    assert [p.name.endswith(FILE) for p in (folder / "processed").iterdir()] == [True]
    assert not (folder / FILE).exists()


def test_disable_keeps_the_secrets_but_refuses_logins(org):
    roster("sftp", "password", "--tenant", org, stdin="a long pass phrase\n")
    assert roster("sftp", "disable", "--tenant", org).exit_code == 0
    assert show(org)["enabled"] is False and show(org)["password"] is True
    status = json.loads(roster("sync", "status", "--tenant", org, "--json").stdout)
    assert status["warnings"] == ["the drop box is disabled: nothing is picked up"]


def test_verify_rejects_a_missing_hash():
    assert verify(None, "anything at all") is False
