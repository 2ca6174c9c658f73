"""The checks of the `[sms]` settings Twilio needs: each problem names the file and the key,
and the auth token never appears in the message."""

from __future__ import annotations

from typing import Any

import pytest

from reminder_cli.config import SmsConfig
from reminder_cli.errors import ConfigError
from reminder_cli.transports.twilio_sms import check_config

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "5ec2e7a0b1c94d6f8e3a7b2c1d0e9f8a"
PATH = "/etc/reminder/reminder.toml"


def sms(**changes: Any) -> SmsConfig:
    settings: dict[str, Any] = {
        "transport": "twilio",
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from_number": "+13125550100",
        **changes,
    }
    return SmsConfig(**settings)


def problem(cfg: SmsConfig) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        check_config(PATH, cfg)
    assert TOKEN not in str(caught.value)
    assert caught.value.path == PATH
    return caught.value


@pytest.mark.parametrize("cfg", [
    sms(),
    sms(from_number="", messaging_service_sid="MG" + "ab" * 16),
    sms(messaging_service_sid="MG" + "AB" * 16),
    sms(status_callback="https://clinic.example/twilio/status", api_base_url="http://127.0.0.1:4010"),
])  # fmt: skip
def test_a_complete_twilio_setup_passes(cfg: SmsConfig) -> None:
    check_config(PATH, cfg)


@pytest.mark.parametrize(("cfg", "key", "says"), [
    (sms(account_sid=""), "sms.account_sid", "TWILIO_ACCOUNT_SID"),
    (sms(account_sid="AC123"), "sms.account_sid", "32 hexadecimal digits"),
    (sms(account_sid="SK0123456789abcdef0123456789abcdef"), "sms.account_sid", "AC followed"),
    (sms(auth_token=""), "sms.auth_token", "TWILIO_AUTH_TOKEN"),
    (sms(from_number=""), "sms.from_number", "messaging_service_sid"),
    (sms(from_number="(312) 555-0100"), "sms.from_number", "E.164"),
    (sms(from_number="13125550100"), "sms.from_number", "E.164"),
    (sms(messaging_service_sid="MG123"), "sms.messaging_service_sid", "MG followed"),
    (sms(status_callback="clinic.example/status"), "sms.status_callback", "URL"),
    (sms(api_base_url="localhost:4010"), "sms.api_base_url", "URL"),
    (sms(api_base_url="http://127.0.0.1:4010/2010-04-01"), "sms.api_base_url", "only scheme"),
])  # fmt: skip
def test_each_missing_or_malformed_setting_is_named(cfg: SmsConfig, key: str, says: str) -> None:
    error = problem(cfg)
    assert error.key == key
    assert says in error.problem
    assert str(error).startswith(f"{PATH}: {key}: ")


def test_an_auth_token_pasted_as_account_sid_is_not_echoed() -> None:
    error = problem(sms(account_sid=TOKEN))
    assert error.key == "sms.account_sid"


def test_an_auth_token_pasted_as_sender_is_not_echoed() -> None:
    error = problem(sms(from_number=TOKEN))
    assert error.key == "sms.from_number"
    assert "not shown" in error.problem


def test_the_auth_token_is_not_in_the_configs_repr() -> None:
    assert TOKEN not in repr(sms())
