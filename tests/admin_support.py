"""Shared pieces of the admin tests (status, show, replay, pause, the terminal): appointment
files, the CLI at a frozen instant, direct reads of the journal and the SMS outbox, a run lock
held by the test itself, and appointments placed around the real clock for subprocesses.

Reading the journal with sqlite3 is how the tests learn reminder ids (assigned by insertion
order, an implementation detail) and states, independently of what the CLI prints.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import Result
from freezegun import freeze_time

from tests.conftest import invoke

PYTHON = sys.executable
COLUMNS = ("appointment_id", "name", "email", "phone", "starts_at", "timezone", "status")
STATES = ("pending", "sending", "sent", "failed", "unknown", "cancelled", "expired", "suppressed")
CST = timedelta(hours=-6)  # America/Chicago in January


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def chicago(*args: int) -> datetime:
    """A wall-clock time in Chicago in January (CST, UTC-6), as aware UTC."""
    return (datetime(*args) - CST).replace(tzinfo=UTC)  # type: ignore[misc]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def at(instant: datetime | str, config: Path, *args: str, **env: str | None) -> Result:
    """The CLI run in-process with the clock frozen at `instant`."""
    with freeze_time(instant):
        return invoke(config, *args, env=dict(env) if env else None)


def status_json(instant: datetime | str, config: Path) -> dict[str, Any]:
    result = at(instant, config, "status", "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def journal_of(config: Path) -> Path:
    return config.parent / "reminders.db"


def query(config: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with closing(sqlite3.connect(journal_of(config))) as db:
        db.row_factory = sqlite3.Row
        return list(db.execute(sql, params))


def reminder_id(config: Path, channel: str, recipient: str, appointment: str = "") -> int:
    sql = "SELECT id FROM reminders WHERE channel = ? AND recipient = ?"
    params: tuple[Any, ...] = (channel, recipient)
    if appointment:
        sql += " AND appointment_id = ?"
        params += (appointment,)
    [row] = query(config, sql, params)
    return int(row["id"])


def state_of(config: Path, rid: int) -> str:
    [row] = query(config, "SELECT state FROM reminders WHERE id = ?", (rid,))
    return str(row["state"])


def sms_in_outbox(config: Path) -> list[dict[str, Any]]:
    outbox = config.parent / "outbox"
    files = sorted(outbox.glob("*.json")) if outbox.is_dir() else []
    return [json.loads(p.read_text("utf-8")) for p in files]


def lock_file_of(config: Path) -> Path:
    journal = journal_of(config)
    return journal.with_name(journal.name + ".lock")


@contextmanager
def lock_held(config: Path, pid: int, since: datetime) -> Iterator[None]:
    """Hold the run lock from the test, as a (possibly hung) send-due would: an exclusive
    flock on `<journal>.lock` holding {"pid", "since"}."""
    fd = os.open(lock_file_of(config), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": pid, "since": since.isoformat()}).encode(), 0)
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# -- appointments around the real clock, for subprocesses (whose clock cannot be frozen) ---


def afternoon_zone(now: datetime) -> str:
    """A fixed-offset IANA zone where it is 13:xx now (no DST, far from SMS quiet hours)."""
    hours = (13 - now.hour) % 24
    hours = hours - 24 if hours > 12 else hours
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"  # Etc/GMT-3 is UTC+3


def due_now_rows(people: list[tuple[str, str, str, str]]) -> list[dict[str, str]]:
    """Appointments (id, name, email, phone) starting in 20 hours in the afternoon zone:
    their day-before reminders fell due 4 hours ago and stay useful for 8 more."""
    now = datetime.now(UTC).replace(microsecond=0)
    starts_at = (now + timedelta(hours=20)).isoformat()
    zone = afternoon_zone(now)
    return [
        {"appointment_id": a, "name": n, "email": e, "phone": p, "starts_at": starts_at,
         "timezone": zone}
        for a, n, e, p in people
    ]  # fmt: skip


def start_reminder(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-m", "reminder_cli", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )


def lock_record(config: Path) -> dict[str, Any]:
    """The holder record in the lock file ({} while nobody holds it)."""
    try:
        raw = lock_file_of(config).read_bytes()
    except FileNotFoundError:
        return {}
    try:
        record: dict[str, Any] = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return record
