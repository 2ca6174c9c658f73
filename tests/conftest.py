"""Shared test pieces: a frozen NOW, a real aiosmtpd server on 127.0.0.1, config files in
tmp_path, and the CLI through CliRunner."""

from __future__ import annotations

import asyncio
import email
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner, Result

from reminder_cli.cli import cli

pytest_plugins = ["tests.twilio_fakes"]  # the fake-Twilio fixtures, for the Twilio tests

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
NOW = datetime(2027, 1, 11, 12, 0, tzinfo=UTC)  # a Monday; the sample CSV's week follows


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--torture", action="store_true", help="run the long crash/overlap tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--torture"):
        return
    skip = pytest.mark.skip(reason="long run: use `make torture`")
    for item in items:
        if "torture" in item.keywords:
            item.add_marker(skip)


@dataclass
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: Message

    @property
    def text(self) -> str:
        for part in self.message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode(part.get_content_charset() or "utf-8")
        return ""


@dataclass
class Handler:
    """aiosmtpd handler that records each message; `delay` seconds before answering DATA,
    `replies` maps a recipient to the SMTP reply its RCPT gets (e.g. "550 no such user")."""

    delay: float = 0.0
    replies: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:  # fmt: skip
        if address in self.replies:
            return self.replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK queued"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: Handler

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def recipients(self) -> list[str]:
        return sorted(r for m in self.received for r in m.rcpt_tos)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(handler: Any) -> Iterator[SmtpServer]:
    """A real aiosmtpd server on a free loopback port with this handler, while inside."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with serving(Handler()) as server:
        yield server


CONFIG = """\
[journal]
path = "reminders.db"

[practice]
name = "Maple Street Clinic"
timezone = "America/Chicago"
phone = "(312) 555-0100"

{rules}

[email]
transport = "{email_transport}"
from = "Maple Street Clinic <reminders@clinic.example>"
host = "127.0.0.1"
port = {port}
timeout = {timeout}

[sms]
transport = "outbox"
from_number = "+13125550100"

[outbox]
dir = "outbox"

[delivery]
workers = {workers}
{extra}
"""

DAY_BEFORE = """\
[[rules]]
name = "day-before"
before = "1d"
channels = ["email", "sms"]
"""


def write_config(
    directory: Path,
    *,
    rules: str = DAY_BEFORE,
    email_transport: str = "outbox",
    port: int = 25,
    timeout: float = 5,
    workers: int = 4,
    extra: str = "",
) -> Path:
    """A reminder.toml in `directory`; returns its path."""
    path = directory / "reminder.toml"
    path.write_text(CONFIG.format(rules=rules, email_transport=email_transport, port=port,
                                  timeout=timeout, workers=workers, extra=extra))  # fmt: skip
    return path


def invoke(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process (stdout and stderr kept apart)."""
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env,
                              catch_exceptions=False)  # fmt: skip


def run_reminder(config: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run the CLI as a real subprocess."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "reminder_cli", "--config", str(config), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)
