"""The SMTP server's final reply to DATA decides a reminder's fate (transports/smtp.py, and
delivery.md: 4xx before the message was accepted -> retry, 5xx -> failed): a real aiosmtpd
server that refuses the message after its body (content filters and greylisting do) must not
leave the reminder journaled as sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from tests.conftest import (
    FIXTURES,
    NOW,
    Handler,
    SmtpServer,
    invoke,
    serving,
    write_config,
)

SEND_AT = "2027-01-11T15:05:00Z"  # the sample's one due email: avery.lindqvist@patients.example
BUG = (
    "BUG: transports/smtp.py SmtpTransport.send ignores the code of the final reply to DATA "
    "(smtplib's SMTP.data() returns it instead of raising), so a message the server refuses "
    "after its body is journaled as sent"
)


@dataclass
class RefusingHandler(Handler):
    """Takes the envelope, then answers the end of DATA with `final_reply`."""

    final_reply: str = "554 5.7.1 Message rejected as spam"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.final_reply


@pytest.fixture
def refusing_server() -> Iterator[SmtpServer]:
    with serving(RefusingHandler()) as server:
        yield server


def email_reminders(db: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            """SELECT recipient, state, reason FROM reminders
               WHERE channel = 'email' AND attempts > 0 ORDER BY id"""
        ).fetchall()


@pytest.mark.parametrize(
    ("final_reply", "state", "reason_starts"),
    [
        ("554 5.7.1 Message rejected as spam", "failed", "smtp 554"),
        ("451 4.7.1 Greylisted, try again later", "pending", "attempt 1 failed (smtp 451"),
    ],
    ids=["554-fails", "451-retries"],
)
def test_a_message_the_server_refuses_at_the_end_of_data_is_not_journaled_as_sent(
    tmp_path: Path, refusing_server: SmtpServer, final_reply: str, state: str, reason_starts: str
) -> None:
    handler = refusing_server.handler
    assert isinstance(handler, RefusingHandler)
    handler.final_reply = final_reply
    config = write_config(tmp_path, email_transport="smtp", port=refusing_server.port)
    with freeze_time(NOW):
        result = invoke(config, "import", str(FIXTURES / "appointments-sample.csv"))
    assert result.exit_code == 0, result.output

    with freeze_time(SEND_AT):
        result = invoke(config, "send-due")

    assert result.exit_code == 1, result.output
    [(recipient, got_state, reason)] = email_reminders(tmp_path / "reminders.db")
    assert (recipient, got_state) == ("avery.lindqvist@patients.example", state)
    assert reason.startswith(reason_starts), reason
    assert "a***@patients.example" in result.stderr
