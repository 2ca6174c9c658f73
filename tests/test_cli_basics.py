"""What every command shares: `--help` and `--version` without a config, the exit codes of
the interface page (documented in `reminder --help` and the README, and produced), plain
output without a terminal, and logging (`--verbose`, `--log-file` JSON lines without message
bodies or secrets).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from reminder_cli.cli import cli
from tests.admin_support import (
    PYTHON,
    at,
    lock_held,
    query,
    reminder_id,
    state_of,
    utc,
    write_csv,
)
from tests.conftest import ROOT, SHARED, SmtpServer, write_config

INTERFACE = SHARED / "spec" / "interface.md"
README = ROOT / "README.md"
INTERFACE_COMMANDS = {"init", "import", "send-due", "status", "replay", "show", "pause", "resume"}
NO_CONFIG_ENV = {"REMINDER_CONFIG": None, "REMINDER_DB": None}
SECRET = "s3cret-Pa55word-never-logged"
ROWS = [
    {"appointment_id": "B-1", "name": "Avery Lindqvist", "email": "avery@patients.example",
     "phone": "(312) 555-0142", "starts_at": "2027-01-12T09:00"},
    {"appointment_id": "B-2", "name": "Fay Nobody", "email": "fay@patients.example",
     "starts_at": "2027-01-12T09:00"},
]  # fmt: skip
DUE = utc(2027, 1, 11, 15)  # 09:00 CST on Monday: both reminders are due


def interface_exit_codes() -> dict[int, str]:
    text = INTERFACE.read_text("utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+) \|$", text, re.M)}


# -- help and version --------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(INTERFACE_COMMANDS | set(cli.commands)))
def test_every_command_help_works_without_a_config(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no reminder.toml here
    result = CliRunner().invoke(cli, [command, "--help"], prog_name="reminder", env=NO_CONFIG_ENV)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: reminder {command} ")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_every_command_of_the_interface_page_exists() -> None:
    assert set(cli.commands) >= INTERFACE_COMMANDS


def test_help_and_version_work_without_a_config_as_a_real_process(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for args, expected in (
        (["--help"], "Usage: reminder "),
        (["--version"], f"reminder, version {importlib.metadata.version('reminder-cli')}"),
    ):
        proc = subprocess.run([PYTHON, "-m", "reminder_cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(expected), proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_help_lists_every_exit_code_of_the_interface_page(tmp_path: Path) -> None:
    codes = interface_exit_codes()
    assert set(codes) == {0, 1, 2, 75}
    result = CliRunner().invoke(cli, ["--help"], prog_name="reminder", env=NO_CONFIG_ENV)
    assert result.exit_code == 0
    epilog = result.stdout.split("Exit codes:", 1)[1]
    lines = {int(m[1]): m[2] for m in re.finditer(r"^\s+(\d+)\s+(.+)$", epilog, re.M)}
    assert set(lines) == set(codes)
    assert "did what was asked" in lines[0] and "lock" in lines[0]
    assert "failed" in lines[1] and "in doubt" in lines[1]
    assert "usage" in lines[2] and "configuration" in lines[2]
    assert "send-due" in lines[75] and "stale" in lines[75]
    assert re.search(r"warning\)", epilog) and re.search(r"critical\)", epilog)


def test_readme_has_a_table_of_every_exit_code() -> None:
    text = README.read_text("utf-8")
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    assert {int(c) for c in re.findall(r"^\| (\d+) \|", section, re.M)} == set(
        interface_exit_codes()
    )


def test_readme_walks_through_when_a_patient_calls() -> None:
    text = README.read_text("utf-8")
    assert re.search(r"^#+ When a patient calls", text, re.M | re.I)


# -- the exit codes, produced -----------------------------------------------------------------


@pytest.fixture
def practice(tmp_path: Path, smtp_server: SmtpServer) -> Path:
    smtp_server.handler.replies["fay@patients.example"] = "550 5.1.1 no such user"
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    result = at(utc(2027, 1, 11, 12), config, "import", str(write_csv(tmp_path / "b.csv", ROWS)))
    assert result.exit_code == 0, result.stderr
    return config


def test_exit_0_and_silence_when_send_due_has_nothing_to_do(practice: Path) -> None:
    result = at(utc(2027, 1, 11, 13), practice, "send-due")
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("", "")


def test_exit_1_with_one_line_per_failed_reminder_on_stderr(practice: Path) -> None:
    result = at(DUE, practice, "send-due")
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert f"reminder {reminder_id(practice, 'email', 'fay@patients.example')}" in line
    assert "550" in line and "no such user" in line


def test_exit_2_for_a_usage_error(practice: Path) -> None:
    result = at(DUE, practice, "send-due", "--no-such-option")
    assert result.exit_code == 2
    assert "--no-such-option" in result.stderr
    assert query(practice, "SELECT COUNT(*) AS n FROM runs")[0]["n"] == 0


def test_exit_2_naming_the_missing_config_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["status"], env=NO_CONFIG_ENV)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "reminder.toml" in line and "reminder init" in line


def test_exit_2_for_an_invalid_csv_and_nothing_is_imported(practice: Path) -> None:
    bad = write_csv(practice.parent / "bad.csv", [
        {"appointment_id": "B-9", "name": "Nine", "email": "nine@patients.example",
         "starts_at": "2027-01-12T09:00"},
        {"appointment_id": "B-10", "name": "Ten", "email": "ten@patients.example",
         "starts_at": "not a time"},
    ])  # fmt: skip
    result = at(utc(2027, 1, 11, 12), practice, "import", str(bad))
    assert result.exit_code == 2
    assert ":3:" in result.stderr and "starts_at" in result.stderr  # line 3 is the bad row
    assert (
        query(practice, "SELECT COUNT(*) AS n FROM appointments WHERE id LIKE 'B-9%'")[0]["n"] == 0
    )


def test_exit_75_when_send_due_finds_the_lock_held_past_the_stale_limit(practice: Path) -> None:
    with lock_held(practice, 4242, DUE - timedelta(minutes=31)):  # stale after 30 minutes
        result = at(DUE, practice, "send-due")
    assert result.exit_code == 75
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "pid 4242" in line and "stale_lock_after" in line
    assert state_of(practice, reminder_id(practice, "email", "avery@patients.example")) == (
        "pending"
    )


def test_exit_0_and_silence_when_send_due_finds_a_fresh_lock(practice: Path) -> None:
    with lock_held(practice, 4242, DUE - timedelta(minutes=29)):
        result = at(DUE, practice, "send-due")
    assert result.exit_code == 0
    assert (result.stdout, result.stderr) == ("", "")
    assert query(practice, "SELECT COUNT(*) AS n FROM runs")[0]["n"] == 0


def test_output_without_a_terminal_has_no_escape_codes(practice: Path) -> None:
    assert at(DUE, practice, "send-due").exit_code == 1
    for args in (("status",), ("show", "--appointment", "B-1"),
                 ("replay", "--state", "failed", "--dry-run")):  # fmt: skip
        result = at(DUE + timedelta(minutes=1), practice, *args)
        assert result.exit_code == 0, (args, result.stderr)
        assert "\x1b[" not in result.stdout + result.stderr, args


# -- logging -----------------------------------------------------------------------------------


def log_entries(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_log_file_gets_one_json_line_per_attempt_with_run_reminder_and_outcome(
    practice: Path,
) -> None:
    log = practice.parent / "logs" / "reminder.jsonl"
    result = at(DUE, practice, "--log-file", str(log), "send-due", SMTP_PASSWORD=SECRET)
    assert result.exit_code == 1
    entries = log_entries(log)
    [run] = query(practice, "SELECT id FROM runs")
    attempts = [e for e in entries if e.get("reminder_id") is not None]
    expected = {
        reminder_id(practice, "email", "avery@patients.example"): "sent",
        reminder_id(practice, "sms", "+13125550142"): "sent",
        reminder_id(practice, "email", "fay@patients.example"): "permanent",
    }
    assert {e["reminder_id"]: e["outcome"] for e in attempts} == expected
    for entry in attempts:
        assert entry["run_id"] == run["id"]
        assert isinstance(entry["ms"], int) and entry["ms"] >= 0
        assert {"time", "level", "event"} <= set(entry)
    [fay] = [e for e in attempts if e["outcome"] == "permanent"]
    assert fay["code"] == "smtp 550"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # it names patients' reminders


def test_log_file_never_holds_a_message_body_a_password_or_a_full_address(
    practice: Path,
) -> None:
    log = practice.parent / "reminder.jsonl"
    assert at(DUE, practice, "--log-file", str(log), "send-due", SMTP_PASSWORD=SECRET
              ).exit_code == 1  # fmt: skip
    fay = reminder_id(practice, "email", "fay@patients.example")
    replayed = at(DUE + timedelta(minutes=5), practice, "--log-file", str(log), "replay", str(fay),
                  "--yes", "--reason", "retry", SMTP_PASSWORD=SECRET)  # fmt: skip
    assert replayed.exit_code == 1  # still no such user
    text = log.read_text("utf-8")
    assert len(log_entries(log)) >= 4
    [sms] = [json.loads(p.read_text("utf-8")) for p in (practice.parent / "outbox").glob("*.json")]
    for secret in (SECRET, "Avery", "Lindqvist", "Fay Nobody", sms["body"], sms["body"][:30],
                   "avery@patients.example", "fay@patients.example", "+13125550142"):  # fmt: skip
        assert secret not in text, secret


def test_log_file_and_stderr_never_hold_the_smtp_password_when_login_fails(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    config.write_text(config.read_text().replace("[email]\n", '[email]\nusername = "clinic"\n'))
    csv_path = write_csv(tmp_path / "b.csv", ROWS[:1])
    assert at(utc(2027, 1, 11, 12), config, "import", str(csv_path)).exit_code == 0
    log = tmp_path / "reminder.jsonl"
    result = at(DUE, config, "--log-file", str(log), "--verbose", "send-due",
                SMTP_PASSWORD=SECRET)  # fmt: skip
    assert result.exit_code == 1  # the server offers no AUTH: the email waits for a retry
    assert smtp_server.received == []
    assert SECRET not in log.read_text("utf-8")
    assert SECRET not in result.stdout + result.stderr


def test_verbose_logs_each_attempt_on_stderr(practice: Path) -> None:
    result = at(DUE, practice, "--verbose", "send-due")
    assert result.exit_code == 1
    avery = reminder_id(practice, "email", "avery@patients.example")
    lines = [x for x in result.stderr.splitlines() if f"reminder_id={avery} " in x + " "]
    assert len(lines) == 1
    assert "outcome=sent" in lines[0] and "run_id=1" in lines[0]
    assert "avery@patients.example" not in result.stderr
