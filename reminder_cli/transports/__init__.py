"""Transports hand a rendered Message to a provider. Each owns its library and turns that
library's failures into our SendError with an outcome (transient, permanent, unknown).

A transport's `send` may be called from several worker threads at once.
"""

from __future__ import annotations

from typing import Protocol

from reminder_cli.config import Config
from reminder_cli.models import Message


class Transport(Protocol):
    name: str

    def send(self, message: Message) -> str:
        """Hand the message over; return the provider's message id, or raise SendError."""
        ...

    def close(self) -> None: ...


def check_transports(config: Config) -> None:
    """Check the settings a transport needs before anything is claimed (ConfigError, exit 2),
    without importing its SDK. Only commands that send call this: `status` or `import` work
    without the provider's secrets."""
    if config.sms.transport == "twilio":
        from reminder_cli.transports.twilio_config import check_config

        check_config(str(config.path), config.sms)


def make_transport(channel: str, config: Config) -> Transport:
    """The configured transport for a channel; provider libraries are imported only here."""
    kind = config.email.transport if channel == "email" else config.sms.transport
    if kind == "outbox":
        from reminder_cli.transports.outbox import OutboxTransport

        return OutboxTransport(config.outbox_dir, config.email.sender, config.sms.from_number)
    if kind == "smtp":
        from reminder_cli.transports.smtp import SmtpTransport

        return SmtpTransport(config.email)
    if kind == "twilio":
        from reminder_cli.transports.twilio_sms import TwilioTransport

        return TwilioTransport(config.sms)
    raise ValueError(f"no transport {kind!r} for {channel}")
