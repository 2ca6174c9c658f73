"""Shared pieces of the Twilio fault tests: account data, a loopback fault server
(pytest-httpserver, threaded), and a transport pointed at it through `api_base_url`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from reminder_cli.config import SmsConfig
from reminder_cli.errors import SendError
from reminder_cli.models import Message
from reminder_cli.transports.twilio_sms import TwilioTransport

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "5ec2e7a0b1c94d6f8e3a7b2c1d0e9f8a"  # what must never show up anywhere
SENDER = "+13125550100"
SERVICE = "MG0123456789abcdef0123456789abcdef"
PATIENT = "+13125550142"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
SID = "SM" + "5" * 32
BODY = "Maple Street Clinic: reminder of your appointment tomorrow at 10:00."


def config(base_url: str, **changes: Any) -> SmsConfig:
    settings: dict[str, Any] = {
        "transport": "twilio",
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from_number": SENDER,
        "api_base_url": base_url,
        "timeout": 2.0,
        **changes,
    }
    return SmsConfig(**settings)


def transport_for(server: HTTPServer, **changes: Any) -> TwilioTransport:
    return TwilioTransport(config(server.url_for("/").rstrip("/"), **changes))


def message(to: str = PATIENT, body: str = BODY) -> Message:
    return Message(reminder_id=7, channel="sms", to=to, body=body)


def send_error(transport: TwilioTransport) -> SendError:
    with pytest.raises(SendError) as caught:
        transport.send(message())
    error = caught.value
    for shown in (error.code, error.text, str(error)):
        assert TOKEN not in shown
        assert "\x1b" not in shown  # no terminal colours from the SDK's str(exc)
    return error


def twilio_error(status: int, code: int, text: str) -> dict[str, Any]:
    """An error body as Twilio's 2010 API sends it."""
    info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": text, "more_info": info, "status": status}


@contextmanager
def running_fault_server() -> Iterator[HTTPServer]:
    server = HTTPServer("127.0.0.1", 0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


# Fixtures for the transport-level Twilio tests (a plugin of conftest.py). The loopback
# proxy setting applies only where the fault server is used.


@pytest.fixture(scope="module")
def fault_server() -> Iterator[HTTPServer]:
    with running_fault_server() as server:
        yield server


@pytest.fixture
def server(fault_server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    fault_server.clear()
    yield fault_server
    fault_server.clear()
