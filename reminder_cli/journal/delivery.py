"""Journal queries for what only the provider can tell: settling in-doubt SMS, and final
delivery status of sent ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reminder_cli.journal.base import JournalBase, iso, parse_iso
from reminder_cli.models import Appointment, Claimed

NOT_FINAL = ("queued", "accepted", "scheduled", "sending", "sent")


class DeliveryQueries(JournalBase):
    def list_in_doubt_sms(self, since: datetime, limit: int) -> list[Claimed]:
        """SMS reminders in doubt claimed since then, as their last attempt saw them."""
        rows = self.db.execute(
            """SELECT r.id, d.id, d.attempt, r.rule, r.channel, r.recipient, r.due_at,
                   r.expires_at, d.claimed_at, a.id, a.name, a.email, a.phone, a.starts_at,
                   a.timezone, a.status, a.location, a.clinician, d.body_sha
               FROM reminders r
               JOIN dispatches d ON d.id = (SELECT MAX(id) FROM dispatches
                                            WHERE reminder_id = r.id)
               JOIN appointments a ON a.id = r.appointment_id
               WHERE r.state = 'unknown' AND r.channel = 'sms' AND d.claimed_at > ?
               ORDER BY d.claimed_at LIMIT ?""",
            [iso(since), limit],
        ).fetchall()
        return [
            Claimed(
                reminder_id=r[0], dispatch_id=r[1], attempt=r[2], rule=r[3], channel=r[4],
                recipient=r[5], due_at=parse_iso(r[6]), expires_at=parse_iso(r[7]),
                claimed_at=parse_iso(r[8]), fingerprint=r[18],
                appointment=Appointment(
                    id=r[9], name=r[10], email=r[11], phone=r[12], starts_at=parse_iso(r[13]),
                    timezone=r[14], status=r[15], location=r[16], clinician=r[17],
                ),
            )
            for r in rows
        ]  # fmt: skip

    def record_settled(
        self, claimed: Claimed, provider_id: str | None, note: str, now: datetime
    ) -> bool:
        """The provider's answer for an in-doubt reminder: found (sent, with its id) or never
        accepted (back to pending, due now). The attempt's record says what was decided."""
        stamp = iso(now)
        with self.transaction():
            if provider_id:
                cursor = self.db.execute(
                    """UPDATE reminders SET state = 'sent', provider_id = ?, reason = ?,
                           updated_at = ? WHERE id = ? AND state = 'unknown'""",
                    [provider_id, note, stamp, claimed.reminder_id],
                )
                outcome = "sent"
            else:
                cursor = self.db.execute(
                    """UPDATE reminders SET state = 'pending', not_before = ?, reason = ?,
                           updated_at = ? WHERE id = ? AND state = 'unknown'""",
                    [stamp, note, stamp, claimed.reminder_id],
                )
                outcome = "transient"
            if cursor.rowcount != 1:
                return False
            self.db.execute(
                """UPDATE dispatches SET outcome = ?, provider_id = COALESCE(?, provider_id),
                       error_code = CASE WHEN ? = 'sent' THEN NULL ELSE 'settled' END,
                       error_message = ? WHERE id = ?""",
                [outcome, provider_id, outcome, note, claimed.dispatch_id],
            )
        return True

    def record_settle_note(self, reminder_id: int, note: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE reminders SET reason = ?, updated_at = ? WHERE id = ? AND state = 'unknown'",
            [note, iso(now), reminder_id],
        )

    def list_sms_to_sync(self, since: datetime, limit: int) -> list[tuple[int, str]]:
        """(dispatch id, message SID) of SMS accepted since then without a final status."""
        marks = ", ".join("?" for _ in NOT_FINAL)
        rows = self.db.execute(
            f"""SELECT id, provider_id FROM dispatches
                WHERE channel = 'sms' AND outcome = 'sent' AND claimed_at > ?
                AND provider_id LIKE 'SM%'
                AND (delivery_status IS NULL OR delivery_status IN ({marks}))
                ORDER BY status_checked_at IS NOT NULL, status_checked_at, id LIMIT ?""",
            [iso(since), *NOT_FINAL, limit],
        )
        return [(int(i), str(sid)) for i, sid in rows]

    def record_delivery(
        self, dispatch_id: int, status: str, error_code: str | None, now: datetime
    ) -> None:
        self.db.execute(
            """UPDATE dispatches SET delivery_status = ?, delivery_error = ?,
                   status_checked_at = ? WHERE id = ?""",
            [status, error_code, iso(now), dispatch_id],
        )

    def load_sms_delivery(self, since: datetime) -> dict[str, int]:
        """Accepted SMS since then by what the provider last said: delivered, undelivered,
        failed, or accepted (no final status yet)."""
        marks = ", ".join("?" for _ in NOT_FINAL)
        counts: dict[str, int] = {}
        for status, count in self.db.execute(
            f"""SELECT CASE WHEN delivery_status IS NULL OR delivery_status IN ({marks})
                        THEN 'accepted' ELSE delivery_status END, COUNT(*) FROM dispatches
                WHERE channel = 'sms' AND outcome = 'sent' AND claimed_at > ?
                GROUP BY 1""",
            [*NOT_FINAL, iso(since)],
        ):
            counts[str(status)] = int(count)
        return counts

    def list_undelivered(self, since: datetime, limit: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                """SELECT recipient, delivery_status AS status, delivery_error AS error_code,
                       reminder_id, claimed_at FROM dispatches
                   WHERE channel = 'sms' AND outcome = 'sent' AND claimed_at > ?
                   AND delivery_status IN ('undelivered', 'failed')
                   ORDER BY claimed_at DESC LIMIT ?""",
                [iso(since), limit],
            )
        )
