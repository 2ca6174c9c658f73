"""Sessions at a real terminal (a pty through pexpect): the replay confirmation prompt, the
status tables and their colours, NO_COLOR.

Subprocesses cannot have a frozen clock, so the appointment is placed around the real time:
it starts in 20 hours in a zone where it is early afternoon now, so its day-before reminders
fell due 4 hours ago and stay useful for 8 more. Avery's email is refused (550) by the real
SMTP server on the first run, so it is `failed` and can be replayed; her SMS went out.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.admin_support import (
    PYTHON,
    due_now_rows,
    reminder_id,
    sms_in_outbox,
    state_of,
    write_csv,
)
from tests.conftest import SmtpServer, invoke, write_config

pexpect = pytest.importorskip("pexpect")

AVERY = "avery@patients.example"
PROMPT = r"Send 1 reminder\(s\) now\? \[y/N\]: "
SGR = re.compile(r"\x1b\[([0-9;]*)m")


@pytest.fixture
def practice(tmp_path: Path, smtp_server: SmtpServer) -> Path:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    rows = due_now_rows([("T-1", "Avery Lindqvist", AVERY, "(312) 555-0142")])
    assert invoke(config, "import", str(write_csv(tmp_path / "t.csv", rows))).exit_code == 0
    smtp_server.handler.replies[AVERY] = "550 5.1.1 mailbox unavailable"
    assert invoke(config, "send-due").exit_code == 1
    del smtp_server.handler.replies[AVERY]  # the mailbox is fixed
    assert state_of(config, reminder_id(config, "email", AVERY)) == "failed"
    assert len(sms_in_outbox(config)) == 1
    return config


def terminal_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "SUDO_USER")}
    env.update(TERM="xterm-256color", USER="alice", COLUMNS="160", LINES="40")
    env.update(extra)
    return env


def spawn(config: Path, *args: str, **env: str) -> Any:
    return pexpect.spawn(
        PYTHON,
        ["-m", "reminder_cli", "--config", str(config), *args],
        env=terminal_env(**env),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 160),
    )


def finish(child: Any) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    output = str(child.before)
    child.close()
    return int(child.exitstatus), output


def colour_codes(text: str) -> list[str]:
    """The SGR parameters that set a foreground or background colour."""
    codes = []
    for params in SGR.findall(text):
        parts = params.split(";")
        i = 0
        while i < len(parts):
            p = int(parts[i] or 0)
            if p in (38, 48):
                codes.append(";".join(parts[i : i + 3]))
                i += 3 if i + 1 < len(parts) and parts[i + 1] == "5" else 5
                continue
            if 30 <= p <= 37 or 40 <= p <= 47 or 90 <= p <= 97 or 100 <= p <= 107:
                codes.append(str(p))
            i += 1
    return codes


def plain(text: str) -> str:
    return SGR.sub("", text).replace("\r\n", "\n")


def test_replay_at_a_terminal_previews_and_asks_and_no_sends_nothing(
    practice: Path, smtp_server: SmtpServer
) -> None:
    rid = reminder_id(practice, "email", AVERY)
    child = spawn(practice, "replay", str(rid), "--reason", "x")
    child.expect(PROMPT)
    preview = plain(str(child.before))
    assert "Would send 1 reminder(s)" in preview
    [row] = [line for line in preview.splitlines() if AVERY in line]
    assert row.split()[0] == str(rid) and "Avery Lindqvist" in row and "failed" in row
    child.sendline("n")
    code, rest = finish(child)
    assert code == 0  # answering no is a choice, not an error
    assert "Nothing sent." in rest
    assert smtp_server.received == []
    assert state_of(practice, rid) == "failed"


def test_replay_at_a_terminal_answered_yes_sends_once_with_a_summary(
    practice: Path, smtp_server: SmtpServer
) -> None:
    rid = reminder_id(practice, "email", AVERY)
    child = spawn(practice, "replay", str(rid), "--reason", "mailbox fixed")
    child.expect(PROMPT)
    child.sendline("y")
    code, rest = finish(child)
    assert code == 0, rest
    assert smtp_server.recipients() == [AVERY]
    assert state_of(practice, rid) == "sent"
    assert re.search(r"Replay run #\d+: sent 1, failed 0, in doubt 0", plain(rest)), rest
    shown = invoke(practice, "show", str(rid))
    assert "by alice" in shown.stdout and "mailbox fixed" in shown.stdout


def test_replay_at_a_terminal_with_yes_does_not_ask_and_respects_no_color(
    practice: Path, smtp_server: SmtpServer
) -> None:
    child = spawn(practice, "replay", "--state", "failed", "--yes", "--reason", "x", NO_COLOR="1")
    code, output = finish(child)
    assert code == 0, output
    assert "[y/N]" not in output
    assert "sent 1" in plain(output)
    assert colour_codes(output) == []  # the preview, the progress bar and the summary
    assert smtp_server.recipients() == [AVERY]


def test_status_at_a_terminal_draws_tables_and_colours_the_pause(practice: Path) -> None:
    assert invoke(practice, "pause", "--reason", "snow day", env={"USER": "alice"}).exit_code == 0
    code, output = finish(spawn(practice, "status"))
    assert code == 0, output
    text = plain(output)
    first = next(line for line in text.splitlines() if line.strip())
    assert first.startswith("PAUSED (all) by alice since ") and first.endswith(": snow day")
    for title in ("Failed", "Last runs", "Lock: free", "┃", AVERY):
        assert title in text, title
    assert colour_codes(output), "no colour at all on a colour terminal"


def test_status_at_a_terminal_respects_no_color(practice: Path) -> None:
    assert invoke(practice, "pause", "--reason", "snow day").exit_code == 0
    code, output = finish(spawn(practice, "status", NO_COLOR="1"))
    assert code == 0, output
    assert "PAUSED (all)" in plain(output)
    assert colour_codes(output) == []


def test_send_due_at_a_terminal_says_that_sending_is_paused(practice: Path, tmp_path: Path) -> None:
    assert invoke(practice, "pause", "--reason", "snow day").exit_code == 0
    rows = due_now_rows([("T-2", "Brook Tanaka", "brook@patients.example", "")])
    assert invoke(practice, "import", str(write_csv(tmp_path / "u.csv", rows))).exit_code == 0
    code, output = finish(spawn(practice, "send-due"))
    assert code == 0, output
    assert "paused" in plain(output).lower()
