"""Contract: the real twilio SDK, through TwilioTransport, against a Prism mock served from
Twilio's own OpenAPI description (../shared/twilio). The mock checks each request against the
published schema (422 when it does not fit) and answers with the spec's example data, so the
expected values below are read from the spec file, not from the code under test.

`.ci/run` starts the mock and exports TWILIO_MOCK_URL; without it the tests start one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from reminder_cli.config import SmsConfig
from reminder_cli.errors import Outcome, SendError
from reminder_cli.models import Message
from reminder_cli.transports.twilio_sms import TwilioTransport, check_config
from tests.conftest import SHARED, free_port

MOCK_DIR = SHARED / "twilio"
SPEC = MOCK_DIR / "twilio_api_v2010.json"
ACCOUNT = "AC0123456789abcdef0123456789abcdef"  # Prism checks the pattern, not the account
TOKEN = "any-token"
SENDER = "+13125550100"
SERVICE = "MG0123456789abcdef0123456789abcdef"
PATIENT = "+13125550142"
BODY = "Maple Street Clinic: Ana, your appointment is tomorrow at 10:00. Reply STOP to opt out."


@cache
def example(path: str, method: str, status: str, name: str) -> dict[str, Any]:
    spec = json.loads(SPEC.read_text())
    content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    value: dict[str, Any] = content["examples"][name]["value"]
    return value


def _start_mock(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the Twilio contract mock needs Node.js; not found: {', '.join(missing)}")
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(MOCK_DIR / "start-mock"), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one below
        )
    deadline = time.monotonic() + 180  # the first run installs Prism with npm
    while "Prism is listening" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"the Twilio mock did not start; its log:\n{log_path.read_text()}")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="session")
def twilio_mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        loopback = ["127.0.0.1", "localhost", os.environ.get("NO_PROXY", "")]
        patch.setenv("NO_PROXY", ",".join(filter(None, loopback)))  # keep mock traffic local
        url = os.environ.get("TWILIO_MOCK_URL", "").rstrip("/")
        if url:
            yield url
            return
        proc, url = _start_mock(tmp_path_factory.mktemp("twilio-mock") / "prism.log")
        try:
            yield url
        finally:
            _stop(proc)


def transport(url: str, **changes: Any) -> TwilioTransport:
    settings: dict[str, Any] = {"transport": "twilio", "account_sid": ACCOUNT, "auth_token": TOKEN,
                                "from_number": SENDER, "api_base_url": url, "timeout": 10.0,
                                **changes}  # fmt: skip
    cfg = SmsConfig(**settings)
    return TwilioTransport(cfg)


def message(body: str = BODY) -> Message:
    return Message(reminder_id=1, channel="sms", to=PATIENT, body=body)


MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"


def test_the_config_used_here_passes_the_transports_own_checks(twilio_mock_url: str) -> None:
    check_config("reminder.toml", transport(twilio_mock_url).config)
    check_config(
        "reminder.toml", transport(twilio_mock_url, status_callback="https://a.example/s").config
    )


def test_send_from_a_number_is_accepted_by_twilios_published_contract(twilio_mock_url: str) -> None:
    sid = transport(twilio_mock_url).send(message())
    assert sid == example(MESSAGES, "post", "201", "create")["sid"]


def test_send_with_a_status_callback_is_accepted(twilio_mock_url: str) -> None:
    sender = transport(twilio_mock_url, status_callback="https://clinic.example/twilio/status")
    assert sender.send(message()) == example(MESSAGES, "post", "201", "create")["sid"]


def test_send_through_a_messaging_service_is_accepted(twilio_mock_url: str) -> None:
    sender = transport(twilio_mock_url, from_number="", messaging_service_sid=SERVICE)
    assert sender.send(message()) == example(MESSAGES, "post", "201", "create")["sid"]


def test_a_body_with_an_emoji_is_accepted(twilio_mock_url: str) -> None:
    sid = transport(twilio_mock_url).send(message("Hi Ana \N{CHERRY BLOSSOM}, see you at 10:00."))
    assert sid.startswith("SM")


def test_a_request_that_breaks_the_contract_is_refused_for_good(twilio_mock_url: str) -> None:
    # A status callback that is not a URI violates the schema; the mock answers 422.
    sender = transport(twilio_mock_url, status_callback="not a url")
    with pytest.raises(SendError) as caught:
        sender.send(message())
    assert caught.value.outcome is Outcome.PERMANENT
    assert caught.value.code.startswith("http 4")


def test_sends_from_several_threads_share_nothing_and_all_succeed(twilio_mock_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sender = transport(twilio_mock_url)
    with ThreadPoolExecutor(4) as pool:
        sids = list(pool.map(lambda _: sender.send(message()), range(12)))
    sender.close()
    assert sids == [example(MESSAGES, "post", "201", "create")["sid"]] * 12


def test_find_sent_reads_twilios_message_list(twilio_mock_url: str) -> None:
    listed = example(MESSAGES, "get", "200", "readFullPage1")["messages"][0]
    created = datetime.strptime(listed["date_created"], "%a, %d %b %Y %H:%M:%S %z")
    sender = transport(twilio_mock_url, from_number=listed["from"])
    found = sender.find_sent(listed["to"], listed["body"], created.astimezone(UTC))
    assert found == listed["sid"]


def test_fetch_status_reads_the_status_and_error_code(twilio_mock_url: str) -> None:
    fetched = example(MESSAGE, "get", "200", "fetch")
    status = transport(twilio_mock_url).fetch_status(fetched["sid"])
    code = fetched["error_code"]
    assert status == (fetched["status"], None if code is None else str(code))
