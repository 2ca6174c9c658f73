"""Journal queries of the dispatch path: runs, the sweep, claims, rails and finishes."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from reminder_cli.errors import Outcome, SendError
from reminder_cli.journal.base import JournalBase, iso, parse_iso
from reminder_cli.models import Appointment, Claimed, State


@dataclass(frozen=True)
class DueRow:
    """A due reminder as the rails see it before claiming."""

    id: int
    channel: str
    recipient: str
    timezone: str
    expires_at: datetime


class DispatchQueries(JournalBase):
    def record_run_start(self, kind: str, now: datetime) -> int:
        """Start a run; runs left 'running' by a dead process are marked crashed first.

        Only call this while holding the run lock: then no other run is alive.
        """
        with self.transaction():
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
                iso(now),
                outcome,
                reason,
                counts.get("sent", 0),
                counts.get("failed", 0),
                counts.get("unknown", 0),
                counts.get("retrying", 0),
                counts.get("suppressed", 0),
                counts.get("expired", 0),
                run_id,
            ],
        )

    def record_sweep(self, run_id: int, now: datetime) -> list[dict[str, Any]]:
        """Move reminders left `sending` by a dead run to `unknown`; return them.

        Only call this while holding the run lock: then every `sending` reminder is orphaned.
        """
        reason = "the run sending it ended before recording the outcome; the provider may have it"
        with self.transaction():
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

    def list_due(self, now: datetime, limit: int) -> list[DueRow]:
        """Due, unexpired pending reminders in due order, with what the rails need."""
        rows = self.db.execute(
            """SELECT r.id, r.channel, r.recipient, a.timezone, r.expires_at
               FROM reminders r JOIN appointments a ON a.id = r.appointment_id
               WHERE r.state = 'pending' AND r.not_before <= ? AND r.expires_at > ?
               ORDER BY r.not_before, r.id LIMIT ?""",
            [iso(now), iso(now), limit],
        )
        return [DueRow(i, c, r, z, parse_iso(e)) for i, c, r, z, e in rows]

    def load_due_rows(self, reminder_ids: list[int]) -> list[DueRow]:
        marks = ", ".join("?" for _ in reminder_ids)
        rows = self.db.execute(
            f"""SELECT r.id, r.channel, r.recipient, a.timezone, r.expires_at
                FROM reminders r JOIN appointments a ON a.id = r.appointment_id
                WHERE r.id IN ({marks}) ORDER BY r.id""",
            reminder_ids,
        )
        return [DueRow(i, c, r, z, parse_iso(e)) for i, c, r, z, e in rows]

    def count_sent_to(self, recipient: str, since: datetime) -> int:
        """Attempts to this recipient since then that a provider may have accepted."""
        row = self.db.execute(
            """SELECT COUNT(*) FROM dispatches WHERE recipient = ? AND claimed_at > ?
               AND (outcome IS NULL OR outcome IN ('sent', 'unknown'))""",
            [recipient, iso(since)],
        ).fetchone()
        return int(row[0])

    def record_gate(
        self,
        reminder_id: int,
        state: str,
        reason: str,
        not_before: datetime | None,
        now: datetime,
    ) -> bool:
        """A rail's decision for a pending reminder: defer, expire or suppress it."""
        cursor = self.db.execute(
            """UPDATE reminders SET state = ?, reason = ?, updated_at = ?,
                   not_before = COALESCE(?, not_before)
               WHERE id = ? AND state = 'pending'""",
            [state, reason, iso(now), iso(not_before) if not_before else None, reminder_id],
        )
        return cursor.rowcount == 1

    def is_opted_out(self, recipient: str) -> str | None:
        row = self.db.execute(
            "SELECT reason FROM opt_outs WHERE recipient = ?", [recipient]
        ).fetchone()
        return str(row[0]) if row else None

    def record_opt_out(self, recipient: str, reason: str, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO opt_outs (recipient, recorded_at, reason) VALUES (?, ?, ?)
               ON CONFLICT (recipient) DO NOTHING""",
            [recipient, iso(now), reason],
        )

    def load_paused_channels(self) -> dict[str, dict[str, Any]]:
        return {row["channel"]: row for row in self.db.query("SELECT * FROM pauses")}

    def record_claim(
        self,
        reminder_id: int,
        run_id: int,
        now: datetime,
        fingerprint: Callable[[Claimed], str | None] | None = None,
    ) -> Claimed | None:
        """Claim one due reminder (compare-and-set) and write its dispatch record, atomically.
        `fingerprint` (the render step) runs inside the transaction: the hash of the exact
        text is committed with the claim, before any provider sees it.

        Returns None when the reminder is no longer pending, due and unexpired.
        """
        stamp = iso(now)
        with self.transaction():
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
            appt = self.db.execute(
                """SELECT id, name, email, phone, starts_at, timezone, status, location,
                       clinician FROM appointments WHERE id = ?""",
                [appointment_id],
            ).fetchone()
            claimed = Claimed(
                reminder_id=reminder_id,
                dispatch_id=0,
                attempt=attempts,
                rule=rule,
                channel=channel,
                recipient=recipient,
                due_at=parse_iso(due_at),
                expires_at=parse_iso(expires_at),
                appointment=Appointment(
                    id=appt[0],
                    name=appt[1],
                    email=appt[2],
                    phone=appt[3],
                    starts_at=parse_iso(appt[4]),
                    timezone=appt[5],
                    status=appt[6],
                    location=appt[7],
                    clinician=appt[8],
                ),
                claimed_at=now,
            )
            body_sha = fingerprint(claimed) if fingerprint else None
            cursor = self.db.execute(
                """INSERT INTO dispatches (reminder_id, run_id, attempt, channel, recipient,
                       claimed_at, body_sha) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [reminder_id, run_id, attempts, channel, recipient, stamp, body_sha],
            )
        return replace(claimed, dispatch_id=int(cursor.lastrowid or 0), fingerprint=body_sha)

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
        with self.transaction():
            self.db.execute(
                """UPDATE dispatches SET finished_at = ?, outcome = ?, provider_id = ?,
                       error_code = ?, error_message = ?, detail = ? WHERE id = ?""",
                [
                    stamp,
                    error.outcome.value if error else Outcome.SENT.value,
                    provider_id,
                    error.code if error else None,
                    error.text if error else None,
                    detail,
                    claimed.dispatch_id,
                ],
            )
            self.db.execute(
                """UPDATE reminders SET state = ?, reason = ?, updated_at = ?,
                       provider_id = COALESCE(?, provider_id),
                       not_before = COALESCE(?, not_before)
                   WHERE id = ? AND state = 'sending'""",
                [
                    state.value,
                    reason,
                    stamp,
                    provider_id,
                    iso(not_before) if not_before else None,
                    claimed.reminder_id,
                ],
            )

    def load_states(self, reminder_ids: list[int]) -> dict[int, str]:
        if not reminder_ids:
            return {}
        marks = ", ".join("?" for _ in reminder_ids)
        rows = self.db.execute(
            f"SELECT id, state FROM reminders WHERE id IN ({marks})", reminder_ids
        )
        return {int(i): str(state) for i, state in rows}
