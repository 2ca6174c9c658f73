"""Configuration: every bad config is one line on stderr naming the file and the key (exit 2,
nothing changed); relative paths follow the config file; help and version need no config; the
journal and the outbox are private to their owner.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from reminder_cli.cli import cli
from tests.conftest import FIXTURES, NOW, invoke, write_config

SAMPLE = FIXTURES / "appointments-sample.csv"
FIRST_DUE = "2027-01-11T15:05:00Z"  # Avery Lindqvist's email and SMS are due (15:00Z)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """The CLI with no --config, catching exceptions so that a crash is an exit code too."""
    return CliRunner().invoke(cli, list(args), env=env)


def edited(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"{old!r} not in the config"
        return text.replace(old, new, 1)

    return edit


BEFORE_1_WEEK = """\
[[rules]]
name = "week-before"
before = "1 week"
channels = ["email"]
"""

# (what is wrong, how to break the standard test config, the key the message must name)
BAD_CONFIGS: list[tuple[str, Callable[[str], str], str]] = [
    ("unknown email transport", edited('transport = "outbox"', 'transport = "pigeon"'),
     "email.transport"),
    ("unknown sms transport", edited('transport = "outbox"\nfrom_number',
                                     'transport = "telegraph"\nfrom_number'), "sms.transport"),
    ("no practice name", edited('name = "Maple Street Clinic"\n', ""), "practice.name"),
    ("bad cron_interval", edited("workers = 4", 'workers = 4\ncron_interval = "5 minutes"'),
     "delivery.cron_interval"),
    ("negative cron_interval", edited("workers = 4", 'workers = 4\ncron_interval = "-5m"'),
     "delivery.cron_interval"),
    ("unknown time zone", edited('timezone = "America/Chicago"', 'timezone = "America/Chicag"'),
     "practice.timezone"),
    ("bad rule before", edited('before = "1d"', 'before = "1 week"'), "rules[0].before"),
    ("zero rule before", edited('before = "1d"', 'before = "0d"'), "rules[0].before"),
    ("unknown key in a table", edited("workers = 4", "workers = 4\nwrokers = 4"),
     "delivery.wrokers"),
    ("unknown table", edited("[practice]", "[practise]\n[practice]"), "practise"),
    ("port is text", edited("port = 25", 'port = "smtp"'), "email.port"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("breakage", "key"), [(b, k) for _, b, k in BAD_CONFIGS], ids=[i for i, _, _ in BAD_CONFIGS]
)
def test_a_bad_config_exits_2_with_one_stderr_line_naming_the_file_and_the_key(
    tmp_path: Path, breakage: Callable[[str], str], key: str
) -> None:
    config = write_config(tmp_path)
    config.write_text(breakage(config.read_text()))
    result = invoke(config, "send-due")
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert str(config) in line
    assert f" {key}:" in line
    assert not (tmp_path / "reminders.db").exists()
    assert not (tmp_path / "outbox").exists()


def test_invalid_toml_exits_2_with_one_line_naming_the_file_and_the_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    lines = config.read_text().splitlines()
    lines.insert(4, 'name = "Maple Street Clinic')  # line 5: an unterminated string
    config.write_text("\n".join(lines) + "\n")
    result = invoke(config, "status", "--json")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert str(config) in line
    assert "TOML" in line
    assert "line 5" in line


def test_a_missing_config_file_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "reminder.toml"
    result = invoke(missing, "send-due")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert str(missing) in line
    assert "reminder init" in line
    assert not (tmp_path / "nowhere").exists()


def test_an_unreadable_config_path_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    config = not_a_dir / "reminder.toml"  # every open() of it fails (ENOTDIR), even for root
    result = invoke(config, "send-due")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert str(config) in line
    assert "cannot read" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_config_file_without_read_permission_exits_2_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    config.chmod(0)
    result = invoke(config, "send-due")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert str(config) in line


def test_a_config_file_that_is_not_utf8_exits_2_with_one_line_naming_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    text = config.read_text().replace("Maple Street Clinic", "Clínica Maple")
    config.write_bytes(text.encode("cp1252"))  # as Windows Notepad saves "ANSI"
    result = run("--config", str(config), "send-due")
    assert result.exit_code == 2, result.exception
    [line] = result.stderr.splitlines()
    assert str(config) in line


def test_without_a_config_file_a_command_says_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REMINDER_CONFIG", raising=False)
    monkeypatch.delenv("REMINDER_DB", raising=False)
    result = run("send-due")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "--config" in line
    assert list(tmp_path.iterdir()) == []


# -- relative paths ----------------------------------------------------------------------------


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A config in tmp_path/conf with relative journal and outbox paths; cwd is another dir."""
    conf = tmp_path / "conf"
    conf.mkdir()
    config = write_config(conf)
    text = config.read_text()
    text = edited('path = "reminders.db"', 'path = "data/reminders.db"')(text)
    text = edited('dir = "outbox"', 'dir = "mail/outbox"')(text)
    config.write_text(text)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("REMINDER_CONFIG", raising=False)
    monkeypatch.delenv("REMINDER_DB", raising=False)
    yield cwd


def import_and_send(*config_args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    with freeze_time(NOW):
        result = run(*config_args, "import", str(SAMPLE), env=env)
    assert result.exit_code == 0, result.stderr
    with freeze_time(FIRST_DUE):
        result = run(*config_args, "send-due", env=env)
        assert result.exit_code == 0, result.stderr
        status = run(*config_args, "status", "--json", env=env)
    assert status.exit_code == 0, status.stderr
    return dict(json.loads(status.stdout))


def assert_files_beside_the_config(conf: Path, cwd: Path, status: dict[str, object]) -> None:
    assert (conf / "data" / "reminders.db").is_file()
    assert Path(str(status["journal"])).resolve() == (conf / "data" / "reminders.db").resolve()
    assert sorted(p.suffix for p in (conf / "mail" / "outbox").iterdir()) == [".eml", ".json"]
    assert list(cwd.iterdir()) == []


def test_relative_journal_and_outbox_paths_follow_the_config_file_not_the_cwd(
    elsewhere: Path,
) -> None:
    status = import_and_send("--config", "../conf/reminder.toml")
    assert_files_beside_the_config(elsewhere.parent / "conf", elsewhere, status)


def test_relative_paths_follow_a_config_file_named_by_reminder_config(elsewhere: Path) -> None:
    status = import_and_send(env={"REMINDER_CONFIG": "../conf/reminder.toml"})
    assert_files_beside_the_config(elsewhere.parent / "conf", elsewhere, status)


def test_reminder_toml_in_the_cwd_is_used_without_config(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = elsewhere.parent / "conf"
    monkeypatch.chdir(conf)
    status = import_and_send()
    assert_files_beside_the_config(conf, elsewhere, status)


# -- help and version need no config -----------------------------------------------------------


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REMINDER_CONFIG", raising=False)
    monkeypatch.delenv("REMINDER_DB", raising=False)
    return tmp_path


def test_reminder_help_works_without_a_config_file_and_lists_every_command(
    no_config: Path,
) -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage:")
    for command in ("init", "import", "send-due", "status", "replay"):
        assert f"  {command} " in result.stdout
    assert list(no_config.iterdir()) == []


def test_reminder_version_works_without_a_config_file(no_config: Path) -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"reminder, version {version('reminder-cli')}\n"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_commands_help_works_without_a_config_file(no_config: Path, command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: cli {command}") or result.stdout.startswith(
        f"Usage: reminder {command}"
    )
    assert result.stderr == ""
    assert list(no_config.iterdir()) == []


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_commands_help_works_even_with_a_broken_config_named(
    tmp_path: Path, command: str
) -> None:
    broken = tmp_path / "reminder.toml"
    broken.write_text("this is not TOML\n")
    result = run(command, "--help", env={"REMINDER_CONFIG": str(broken)})
    assert result.exit_code == 0
    assert result.stderr == ""


def test_python_m_reminder_cli_and_the_console_script_answer_help_and_version(
    no_config: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REMINDER_CONFIG", "REMINDER_DB")}
    script = Path(sys.executable).parent / "reminder"
    for argv in ([sys.executable, "-m", "reminder_cli"], [str(script)]):
        proc = subprocess.run([*argv, "--version"], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"reminder, version {version('reminder-cli')}\n"
        proc = subprocess.run([*argv, "--help"], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("Usage: reminder ")


# -- private files -----------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_is_0600_and_outbox_0700_with_0600_files_after_a_send(
    tmp_path: Path, umask: int
) -> None:
    config = write_config(tmp_path)
    with freeze_time(NOW):
        assert invoke(config, "import", str(SAMPLE)).exit_code == 0
    with freeze_time(FIRST_DUE):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.stderr
    journal = tmp_path / "reminders.db"
    assert oct(mode(journal)) == oct(0o600)
    outbox = tmp_path / "outbox"
    assert oct(mode(outbox)) == oct(0o700)
    files = sorted(outbox.iterdir())
    assert [p.suffix for p in files] == [".eml", ".json"]
    for path in files:
        assert oct(mode(path)) == oct(0o600), path.name


def test_init_creates_the_journal_readable_by_its_owner_only(tmp_path: Path, umask: int) -> None:
    result = run("init", str(tmp_path / "clinic"))
    assert result.exit_code == 0, result.stderr
    assert oct(mode(tmp_path / "clinic" / "reminders.db")) == oct(0o600)
