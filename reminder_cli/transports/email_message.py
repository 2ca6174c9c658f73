"""Builds the RFC 5322 message for an email reminder (plain text with an HTML alternative)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

from reminder_cli.models import Message


def build_email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.body)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email
