"""The SQLite journal: the only module that writes SQL.

Every reminder's life is here: planned, claimed (before any provider call), finished (outcome
and state in one transaction). Times are stored as ISO 8601 UTC text, to the second, so that
text order is time order.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from reminder_cli.errors import ConfigError, Outcome, SendError
from reminder_cli.models import STATES, Appointment, Claimed, PlannedReminder, State
from reminder_cli.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


def iso(moment: datetime) -> str:
    """An aware datetime as stored: UTC, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ensure_private_file(path: Path) -> None:
    """Create `path` readable by its owner only, if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


class Journal:
    """An open journal. Use from one thread only."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db, self.path = db, path

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Journal:
        """Open (creating it mode 0600 if allowed) and migrate the journal at `path`."""
        if not path.exists():
            if not create:
                raise ConfigError(
                    str(path), "", "no journal here (run `reminder init` or `reminder import`)"
                )
            ensure_private_file(path)
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            journal = cls(db, path)
            journal.ensure_migrated()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(str(path), "", f"cannot open the journal: {exc}")
        return journal

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    # -- schema ------------------------------------------------------------------------------

    def load_schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def ensure_migrated(self) -> None:
        """Apply every migration this journal has not had yet, each in its own transaction."""
        version = self.load_schema_version()
        if version > len(MIGRATIONS):
            raise ConfigError(
                str(self.path),
                "",
                f"journal schema {version} is newer than this program knows "
                f"({len(MIGRATIONS)}); upgrade reminder-cli",
            )
        for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                for statement in filter(str.strip, sql.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    # -- appointments and planning -----------------------------------------------------------

    def load_source_hashes(self) -> dict[str, str]:
        rows = self.db.execute("SELECT id, source_hash FROM appointments")
        return dict(rows.fetchall())

    def load_appointment(self, appointment_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM appointments WHERE id = ?", [appointment_id]))
        return rows[0] if rows else None

    def record_appointment(self, appt: Appointment, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO appointments (id, name, email, phone, starts_at, timezone, status,
                   location, clinician, sms_ok, sms_problem, source_hash, imported_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email,
                   phone = excluded.phone, starts_at = excluded.starts_at,
                   timezone = excluded.timezone, status = excluded.status,
                   location = excluded.location, clinician = excluded.clinician,
                   sms_ok = excluded.sms_ok, sms_problem = excluded.sms_problem,
                   source_hash = excluded.source_hash, updated_at = excluded.updated_at""",
            [
                appt.id, appt.name, appt.email, appt.phone, iso(appt.starts_at), appt.timezone,
                appt.status, appt.location, appt.clinician, int(appt.sms_ok), appt.sms_problem,
                appt.source_hash, iso(now), iso(now),
            ],
        )  # fmt: skip

    def list_reminders_of(self, appointment_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM reminders WHERE appointment_id = ? ORDER BY id", [appointment_id]
            )
        )

    def record_planned(
        self, appointment_id: str, starts_at: datetime, plan: PlannedReminder, state: State,
        reason: str, now: datetime,
    ) -> None:  # fmt: skip
        self.db.execute(
            """INSERT INTO reminders (appointment_id, rule, channel, recipient, starts_at, due_at,
                   expires_at, not_before, state, reason, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                appointment_id, plan.rule, plan.channel, plan.recipient, iso(starts_at),
                iso(plan.due_at), iso(plan.expires_at), iso(plan.due_at), state.value, reason,
                iso(now), iso(now),
            ],
        )  # fmt: skip

    def record_replanned(
        self, reminder_id: int, plan: PlannedReminder, state: State, reason: str, now: datetime
    ) -> None:
        """Bring a cancelled reminder back, for an appointment moved back or restored."""
        self.db.execute(
            """UPDATE reminders SET due_at = ?, expires_at = ?, not_before = ?, state = ?,
                   reason = ?, updated_at = ? WHERE id = ? AND state = 'cancelled'""",
            [
                iso(plan.due_at), iso(plan.expires_at), iso(plan.due_at), state.value, reason,
                iso(now), reminder_id,
            ],
        )  # fmt: skip

    def record_cancelled(self, reminder_id: int, reason: str, now: datetime) -> bool:
        """Cancel a reminder if it is still pending; True if it was."""
        cursor = self.db.execute(
            """UPDATE reminders SET state = 'cancelled', reason = ?, updated_at = ?
               WHERE id = ? AND state = 'pending'""",
            [reason, iso(now), reminder_id],
        )
        return cursor.rowcount == 1

    # -- runs --------------------------------------------------------------------------------

    def record_run_start(self, kind: str, now: datetime) -> int:
        """Start a run; runs left 'running' by a dead process are marked crashed first.

        Only call this while holding the run lock: then no other run is alive.
        """
        with self.db.atomic():
            self.db.execute(
                """UPDATE runs SET outcome = 'crashed',
                       reason = 'the process ended without finishing its run'
                   WHERE outcome = 'running'"""
            )
            cursor = self.db.execute(
                "INSERT INTO runs (kind, pid, started_at) VALUES (?, ?, ?)",
                [kind, os.getpid(), iso(now)],
            )
        return int(cursor.lastrowid or 0)

    def record_run_end(
        self, run_id: int, outcome: str, reason: str, counts: dict[str, int], now: datetime
    ) -> None:
        self.db.execute(
            """UPDATE runs SET finished_at = ?, outcome = ?, reason = ?, sent = ?, failed = ?,
                   unknown = ?, retrying = ?, suppressed = ?, expired = ? WHERE id = ?""",
            [
                iso(now), outcome, reason, counts.get("sent", 0), counts.get("failed", 0),
                counts.get("unknown", 0), counts.get("retrying", 0), counts.get("suppressed", 0),
                counts.get("expired", 0), run_id,
            ],
        )  # fmt: skip

    # -- the dispatch path -------------------------------------------------------------------

    def record_sweep(self, run_id: int, now: datetime) -> list[dict[str, Any]]:
        """Move reminders left `sending` by a dead run to `unknown`; return them.

        Only call this while holding the run lock: then every `sending` reminder is orphaned.
        """
        reason = "the run sending it ended before recording the outcome; the provider may have it"
        with self.db.atomic():
            cursor = self.db.execute(
                """UPDATE reminders SET state = 'unknown', reason = ?, updated_at = ?
                   WHERE state = 'sending'
                   RETURNING id, channel, recipient, claimed_at, appointment_id""",
                [reason, iso(now)],
            )
            keys = [column[0] for column in cursor.description]
            swept = [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]
            self.db.execute(
                """UPDATE dispatches SET outcome = 'unknown', finished_at = ?,
                       error_code = 'interrupted', error_message = ?
                   WHERE outcome IS NULL AND run_id != ?""",
                [iso(now), reason, run_id],
            )
        return swept

    def record_expired_due(self, now: datetime) -> int:
        """Expire every pending reminder whose usefulness has passed."""
        cursor = self.db.execute(
            """UPDATE reminders SET state = 'expired', updated_at = ?,
                   reason = 'not sent before ' || CASE WHEN expires_at = starts_at
                       THEN 'the appointment started' ELSE 'its lateness limit' END
               WHERE state = 'pending' AND expires_at <= ?""",
            [iso(now), iso(now)],
        )
        return cursor.rowcount

    def list_due_ids(self, now: datetime, limit: int) -> list[int]:
        rows = self.db.execute(
            """SELECT id FROM reminders
               WHERE state = 'pending' AND not_before <= ? AND expires_at > ?
               ORDER BY not_before, id LIMIT ?""",
            [iso(now), iso(now), limit],
        )
        return [row[0] for row in rows]

    def record_claim(self, reminder_id: int, run_id: int, now: datetime) -> Claimed | None:
        """Claim one due reminder (compare-and-set) and write its dispatch record, atomically.

        Returns None when the reminder is no longer pending, due and unexpired.
        """
        stamp = iso(now)
        with self.db.atomic():
            rows = self.db.execute(
                """UPDATE reminders SET state = 'sending', attempts = attempts + 1,
                       claimed_at = ?, updated_at = ?, reason = ''
                   WHERE id = ? AND state = 'pending' AND not_before <= ? AND expires_at > ?
                   RETURNING attempts, rule, channel, recipient, due_at, expires_at,
                       appointment_id""",
                [stamp, stamp, reminder_id, stamp, stamp],
            ).fetchall()
            if not rows:
                return None
            attempts, rule, channel, recipient, due_at, expires_at, appointment_id = rows[0]
            cursor = self.db.execute(
                """INSERT INTO dispatches (reminder_id, run_id, attempt, channel, recipient,
                       claimed_at) VALUES (?, ?, ?, ?, ?, ?)""",
                [reminder_id, run_id, attempts, channel, recipient, stamp],
            )
            appt = self.db.execute(
                """SELECT id, name, email, phone, starts_at, timezone, status, location,
                       clinician FROM appointments WHERE id = ?""",
                [appointment_id],
            ).fetchone()
        appointment = Appointment(
            id=appt[0], name=appt[1], email=appt[2], phone=appt[3],
            starts_at=parse_iso(appt[4]), timezone=appt[5], status=appt[6], location=appt[7],
            clinician=appt[8],
        )  # fmt: skip
        return Claimed(
            reminder_id=reminder_id, dispatch_id=int(cursor.lastrowid or 0), attempt=attempts,
            rule=rule, channel=channel, recipient=recipient, due_at=parse_iso(due_at),
            expires_at=parse_iso(expires_at), appointment=appointment,
        )  # fmt: skip

    def record_finish(
        self,
        claimed: Claimed,
        state: State,
        now: datetime,
        *,
        provider_id: str | None = None,
        error: SendError | None = None,
        reason: str = "",
        not_before: datetime | None = None,
        detail: str | None = None,
    ) -> None:
        """Write the attempt's outcome and the reminder's new state in one transaction."""
        stamp = iso(now)
        with self.db.atomic():
            self.db.execute(
                """UPDATE dispatches SET finished_at = ?, outcome = ?, provider_id = ?,
                       error_code = ?, error_message = ?, detail = ? WHERE id = ?""",
                [stamp, error.outcome.value if error else Outcome.SENT.value, provider_id,
                 error.code if error else None, error.text if error else None, detail,
                 claimed.dispatch_id],
            )  # fmt: skip
            self.db.execute(
                """UPDATE reminders SET state = ?, reason = ?, updated_at = ?,
                       provider_id = COALESCE(?, provider_id),
                       not_before = COALESCE(?, not_before)
                   WHERE id = ? AND state = 'sending'""",
                [state.value, reason, stamp, provider_id,
                 iso(not_before) if not_before else None, claimed.reminder_id],
            )  # fmt: skip

    # -- what status reads -------------------------------------------------------------------

    def load_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, count in self.db.execute("SELECT state, COUNT(*) FROM reminders GROUP BY state"):
            counts[state] = count
        return counts

    def count_due(self, now: datetime) -> int:
        row = self.db.execute(
            """SELECT COUNT(*) FROM reminders
               WHERE state = 'pending' AND not_before <= ? AND expires_at > ?""",
            [iso(now), iso(now)],
        ).fetchone()
        return int(row[0])

    def load_next_due(self, now: datetime) -> datetime | None:
        row = self.db.execute(
            """SELECT MIN(not_before) FROM reminders WHERE state = 'pending' AND not_before > ?""",
            [iso(now)],
        ).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    def list_in_doubt(self, include_sending: bool) -> list[dict[str, Any]]:
        states = ("unknown", "sending") if include_sending else ("unknown",)
        marks = ", ".join("?" for _ in states)
        return list(
            self.db.query(
                f"""SELECT id, channel, recipient, claimed_at, reason, appointment_id, state
                    FROM reminders WHERE state IN ({marks}) ORDER BY claimed_at, id""",
                list(states),
            )
        )

    def load_last_run(self) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT 1"))
        return rows[0] if rows else None
