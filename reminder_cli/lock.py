"""The run lock: an exclusive `flock` on a file beside the journal.

The kernel releases it when the holder dies, so a crash never leaves a stale lock. The file
records the holder's pid and start time for `status`.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reminder_cli.errors import LockTimeout


def lock_path_for(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".lock")


@dataclass(frozen=True)
class Holder:
    held: bool
    pid: int | None
    since: datetime | None
    command: str = ""


class RunLock:
    """`with RunLock(path).acquire(...)`; `acquire` returns False if another process holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def try_acquire(self, command: str, now: datetime) -> bool:
        fd = self._open()
        for attempt in range(5):  # `status` may hold a shared lock for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 4:
                    os.close(fd)
                    return False
                time.sleep(0.01)
        self._fd = fd
        record = {"pid": os.getpid(), "since": now.astimezone(UTC).isoformat(), "command": command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        return True

    def acquire_waiting(self, command: str, timeout: float) -> None:
        """Wait up to `timeout` seconds for the lock; raise LockTimeout naming the holder."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire(command, datetime.now(UTC)):
            if time.monotonic() >= deadline:
                holder = read_holder(self.path)
                raise LockTimeout(
                    f"another run (pid {holder.pid}, {holder.command or 'unknown command'}) "
                    f"held the lock {self.path} for the whole {timeout:g} s; "
                    "try again later or raise --lock-timeout"
                )
            time.sleep(0.2)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(path: Path) -> Holder:
    """Who holds the lock, if anyone (tests it with a shared, non-blocking flock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return Holder(False, None, None)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            held = True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            held = False
        raw = os.pread(fd, 4096, 0)
    finally:
        os.close(fd)
    if not held:
        return Holder(False, None, None)
    try:
        record = json.loads(raw or b"{}")
        since = datetime.fromisoformat(record["since"]) if record.get("since") else None
        return Holder(True, record.get("pid"), since, record.get("command", ""))
    except (ValueError, KeyError, TypeError):
        return Holder(True, None, None)
