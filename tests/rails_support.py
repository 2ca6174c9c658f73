"""Helpers shared by the safety-rail tests: appointment CSVs, plain-sqlite3 reads of the
journal, and what the providers (the SMTP server and the SMS outbox) really got.

Everything here reads the journal with the standard library's sqlite3, never through the
program's own queries, so the tests check what is stored, not what the code says it stored.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.conftest import SmtpServer, invoke

COLUMNS = ("appointment_id", "name", "email", "phone", "starts_at", "timezone", "status")
STATES = ("pending", "sending", "sent", "failed", "unknown", "cancelled", "expired", "suppressed")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An aware UTC datetime written by hand: utc(2027, 3, 14, 7, 0)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """A UTC instant as the journal stores it (ISO 8601, to the second)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    """A CSV export with the usual columns; keys left out of a row are empty."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row.get(column, "") for column in COLUMNS])
    return path


def appt(
    appointment_id: str,
    starts_at: str,
    timezone: str,
    *,
    email: str = "",
    phone: str = "",
    status: str = "scheduled",
) -> dict[str, str]:
    return {
        "appointment_id": appointment_id,
        "name": f"Patient {appointment_id}",
        "email": email,
        "phone": phone,
        "starts_at": starts_at,
        "timezone": timezone,
        "status": status,
    }


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql, params).fetchall()]


def execute(db: Path, sql: str, params: Sequence[Any] = ()) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(sql, params)


def reminders(db: Path) -> list[dict[str, Any]]:
    return query(db, "SELECT * FROM reminders ORDER BY id")


def reminder_by(db: Path, appointment_id: str, rule: str, channel: str) -> dict[str, Any]:
    """The one reminder of an appointment, rule and channel (for its current start)."""
    rows = query(
        db,
        """SELECT r.* FROM reminders r JOIN appointments a ON a.id = r.appointment_id
           WHERE r.appointment_id = ? AND r.rule = ? AND r.channel = ?
             AND r.starts_at = a.starts_at""",
        [appointment_id, rule, channel],
    )
    assert len(rows) == 1, (appointment_id, rule, channel, rows)
    return rows[0]


def states(db: Path) -> dict[tuple[str, str, str], str]:
    """(appointment, rule, channel) -> state, for the appointments' current start times."""
    rows = query(
        db,
        """SELECT r.appointment_id, r.rule, r.channel, r.state FROM reminders r
           JOIN appointments a ON a.id = r.appointment_id WHERE r.starts_at = a.starts_at""",
    )
    return {(r["appointment_id"], r["rule"], r["channel"]): r["state"] for r in rows}


def dispatches(db: Path, reminder_id: int | None = None) -> list[dict[str, Any]]:
    if reminder_id is None:
        return query(db, "SELECT * FROM dispatches ORDER BY id")
    return query(db, "SELECT * FROM dispatches WHERE reminder_id = ? ORDER BY id", [reminder_id])


def runs(db: Path) -> list[dict[str, Any]]:
    return query(db, "SELECT * FROM runs ORDER BY id")


def status_json(config: Path) -> dict[str, Any]:
    result = invoke(config, "status", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def sms_sent(outbox: Path) -> list[tuple[int, str]]:
    """(reminder id, number) of every SMS file in the outbox."""
    got = []
    for path in sorted(outbox.glob("reminder-*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        got.append((int(record["reminder_id"]), record["to"]))
    return got


def emails_sent(server: SmtpServer) -> list[tuple[int, str]]:
    """(reminder id, address) of every message the SMTP server queued."""
    return [
        (int(received.message["X-Reminder-Id"]), rcpt)
        for received in server.received
        for rcpt in received.rcpt_tos
    ]


def stderr_lines(result: Result) -> list[str]:
    return result.stderr.splitlines()
