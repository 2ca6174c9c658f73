"""Checks the `[sms]` settings Twilio needs, at config load, without importing the SDK
(cron's send-due loads the SDK only when an SMS is due)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reminder_cli.errors import ConfigError

if TYPE_CHECKING:
    from reminder_cli.config import SmsConfig

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


def _shown(value: str, cfg: SmsConfig) -> str:
    """`value` quoted for an error message, unless it holds the auth token."""
    if cfg.auth_token and cfg.auth_token in value:
        return "(the value looks like the auth token; it is not shown)"
    return repr(value)


def check_config(path_for_errors: str, cfg: SmsConfig) -> None:
    """Raise ConfigError for the first `[sms]` setting Twilio cannot work with; for use when
    `[sms] transport = "twilio"`, before anything is claimed. Never shows the auth token."""

    def fail(key: str, problem: str) -> None:
        raise ConfigError(path_for_errors, f"sms.{key}", problem)

    if not cfg.account_sid:
        fail("account_sid", "missing: set it here or in the TWILIO_ACCOUNT_SID variable")
    if not _ACCOUNT_SID.match(cfg.account_sid):
        fail(
            "account_sid",
            f"not an Account SID ({len(cfg.account_sid)} characters; expected AC followed by "
            "32 hexadecimal digits, as shown in the Twilio console)",
        )
    if not cfg.auth_token:
        fail("auth_token", "missing: set the TWILIO_AUTH_TOKEN variable (or auth_token here)")
    if not cfg.from_number and not cfg.messaging_service_sid:
        fail(
            "from_number",
            "missing: set from_number (your Twilio number, like +13125550100) or "
            "messaging_service_sid (MG...)",
        )
    if cfg.from_number and not _E164.match(cfg.from_number):
        fail(
            "from_number",
            f"{_shown(cfg.from_number, cfg)} is not in E.164 form; write it like +13125550100",
        )
    if cfg.messaging_service_sid and not _SERVICE_SID.match(cfg.messaging_service_sid):
        fail(
            "messaging_service_sid",
            "not a Messaging Service SID (expected MG followed by 32 hexadecimal digits)",
        )
    for key, url in (("status_callback", cfg.status_callback), ("api_base_url", cfg.api_base_url)):
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.netloc):
            fail(key, f"{_shown(url, cfg)} is not an http:// or https:// URL")
    if urlsplit(cfg.api_base_url).path.strip("/"):
        fail("api_base_url", "give only scheme, host and port (the SDK adds the path)")
