"""Builds the RFC 5322 bytes of an email reminder: plain text with an HTML alternative.

It uses the compat32 `email.mime` classes: the modern EmailMessage API parses every header
it sets and costs about three times as much CPU, which at a few hundred messages a second is
what limits a run. Non-ASCII display names and subjects are RFC 2047 encoded, bodies are
quoted-printable UTF-8 (readable in the outbox).
"""

from __future__ import annotations

from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formataddr, formatdate, parseaddr

from reminder_cli.models import Message

_UTF8 = Charset("utf-8")
_UTF8.header_encoding = QP
_UTF8.body_encoding = QP


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, _UTF8).encode()


def _address(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address


def _text(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, _UTF8)
    return part


def build_email(message: Message, sender: str) -> bytes:
    """The whole message, as bytes with CRLF line ends, ready for SMTP or a .eml file."""
    parts = MIMEMultipart("alternative")
    parts["From"] = _address(sender)
    parts["To"] = _header(message.to)
    parts["Subject"] = _header(message.subject)
    parts["Date"] = formatdate(usegmt=True)
    for name, value in message.headers.items():
        parts[name] = _header(value)
    parts.attach(_text(message.body, "plain"))
    if message.html:
        parts.attach(_text(message.html, "html"))
    return parts.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
