"""Journal reads for `status`: counts, due work, runs, problems. Proportional to the due and
recent work, not to the history (every query here is served by an index)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reminder_cli.journal.base import JournalBase, iso, parse_iso
from reminder_cli.models import STATES


class ReportQueries(JournalBase):
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

    def list_runs(self, limit: int) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit]))

    def load_last_finished_run(self, kind: str = "send-due") -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                """SELECT * FROM runs WHERE kind = ? AND finished_at IS NOT NULL
                   ORDER BY id DESC LIMIT 1""",
                [kind],
            )
        )
        return rows[0] if rows else None

    def list_in_state_since(self, state: str, since: datetime, limit: int) -> list[dict[str, Any]]:
        """Reminders in a state, changed since then, newest first (the state index bounds it)."""
        return list(
            self.db.query(
                """SELECT id, appointment_id, rule, channel, recipient, due_at, reason,
                       updated_at, attempts FROM reminders
                   WHERE state = ? AND updated_at > ? ORDER BY updated_at DESC, id DESC
                   LIMIT ?""",
                [state, iso(since), limit],
            )
        )

    def count_in_state_since(self, state: str, since: datetime) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM reminders WHERE state = ? AND updated_at > ?",
            [state, iso(since)],
        ).fetchone()
        return int(row[0])

    def list_opt_outs(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM opt_outs ORDER BY recorded_at DESC"))

    def list_contact_problems(self, now: datetime) -> list[dict[str, Any]]:
        """Upcoming appointments whose phone cannot take SMS or that have no usable contact."""
        return list(
            self.db.query(
                """SELECT id, name, email, phone, sms_problem, starts_at FROM appointments
                   WHERE status = 'scheduled' AND starts_at > ? AND sms_ok = 0
                   ORDER BY starts_at""",
                [iso(now)],
            )
        )
