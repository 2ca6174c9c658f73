"""The outbox transport: one file per message in a private directory, written atomically.

Email becomes `<reminder>-<n>.eml`, SMS `<reminder>-<n>.json` with "to", "from", "body" and
"reminder_id". A file appears whole or not at all (write to a temporary name, fsync, rename).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import tempfile
from pathlib import Path

from reminder_cli.errors import Outcome, SendError
from reminder_cli.models import Message
from reminder_cli.transports.email_message import build_email

PARTIAL = ".partial"  # a file being written; matches no "*.eml" or "*.json" glob


def remove_partials(directory: Path) -> None:
    """Remove half-written files a killed run left; call under the run lock, before sending."""
    for leftover in directory.glob(f".tmp-*{PARTIAL}") if directory.is_dir() else ():
        with contextlib.suppress(OSError):
            leftover.unlink()


class OutboxTransport:
    name = "outbox"

    def __init__(self, directory: Path, email_sender: str, sms_sender: str) -> None:
        self.directory, self.email_sender, self.sms_sender = directory, email_sender, sms_sender

    def _ensure_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write(self, stem: str, suffix: str, data: bytes) -> str:
        self._ensure_dir()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=PARTIAL)
        try:
            with os.fdopen(fd, "wb") as handle:  # mkstemp creates it mode 0600
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            for n in itertools.count(1):  # never overwrite: a replay gets the next number
                target = self.directory / f"{stem}-{n}{suffix}"
                try:
                    os.link(tmp, target)
                    return target.name
                except FileExistsError:
                    continue
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise AssertionError("unreachable")

    def send(self, message: Message) -> str:
        stem = f"reminder-{message.reminder_id}"
        try:
            if message.channel == "email":
                data = build_email(message, self.email_sender)
                return self._write(stem, ".eml", data)
            record = {
                "to": message.to,
                "from": self.sms_sender,
                "body": message.body,
                "reminder_id": message.reminder_id,
            }
            return self._write(stem, ".json", json.dumps(record, ensure_ascii=False).encode())
        except OSError as exc:
            raise SendError(Outcome.TRANSIENT, f"errno {exc.errno}", f"outbox: {exc.strerror}")

    def close(self) -> None:
        pass
