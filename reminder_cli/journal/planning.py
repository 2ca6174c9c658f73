"""Journal queries for importing: appointments and their planned reminders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reminder_cli.journal.base import JournalBase, iso
from reminder_cli.models import Appointment, PlannedReminder, State


class PlanningQueries(JournalBase):
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
                appt.id,
                appt.name,
                appt.email,
                appt.phone,
                iso(appt.starts_at),
                appt.timezone,
                appt.status,
                appt.location,
                appt.clinician,
                int(appt.sms_ok),
                appt.sms_problem,
                appt.source_hash,
                iso(now),
                iso(now),
            ],
        )

    def list_reminders_of(self, appointment_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM reminders WHERE appointment_id = ? ORDER BY id", [appointment_id]
            )
        )

    def record_planned(
        self,
        appointment_id: str,
        starts_at: datetime,
        plan: PlannedReminder,
        state: State,
        reason: str,
        now: datetime,
    ) -> None:
        self.db.execute(
            """INSERT INTO reminders (appointment_id, rule, channel, recipient, starts_at, due_at,
                   expires_at, not_before, state, reason, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                appointment_id,
                plan.rule,
                plan.channel,
                plan.recipient,
                iso(starts_at),
                iso(plan.due_at),
                iso(plan.expires_at),
                iso(plan.due_at),
                state.value,
                reason,
                iso(now),
                iso(now),
            ],
        )

    def record_replanned(
        self, reminder_id: int, plan: PlannedReminder, state: State, reason: str, now: datetime
    ) -> None:
        """Bring a cancelled reminder back, for an appointment moved back or restored."""
        self.db.execute(
            """UPDATE reminders SET due_at = ?, expires_at = ?, not_before = ?, state = ?,
                   reason = ?, updated_at = ? WHERE id = ? AND state = 'cancelled'""",
            [
                iso(plan.due_at),
                iso(plan.expires_at),
                iso(plan.due_at),
                state.value,
                reason,
                iso(now),
                reminder_id,
            ],
        )

    def record_cancelled(self, reminder_id: int, reason: str, now: datetime) -> bool:
        """Cancel a reminder if it is still pending; True if it was."""
        cursor = self.db.execute(
            """UPDATE reminders SET state = 'cancelled', reason = ?, updated_at = ?
               WHERE id = ? AND state = 'pending'""",
            [reason, iso(now), reminder_id],
        )
        return cursor.rowcount == 1
