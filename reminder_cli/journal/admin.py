"""Journal queries for what people do by hand: pause, replay, a reminder's history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reminder_cli.journal.base import JournalBase, iso


class AdminQueries(JournalBase):
    def record_pause(self, channel: str, by: str, reason: str, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO pauses (channel, paused_by, paused_at, reason) VALUES (?, ?, ?, ?)
               ON CONFLICT (channel) DO UPDATE SET paused_by = excluded.paused_by,
                   paused_at = excluded.paused_at, reason = excluded.reason""",
            [channel, by, iso(now), reason],
        )

    def record_resume(self, channel: str | None) -> int:
        if channel is None:
            return self.db.execute("DELETE FROM pauses").rowcount
        return self.db.execute("DELETE FROM pauses WHERE channel = ?", [channel]).rowcount

    def list_reminders(
        self, where: str, params: list[Any], limit: int = 10_000
    ) -> list[dict[str, Any]]:
        """Reminders with their appointment's name, start and zone; `where` is built by callers
        in this package from fixed fragments, never from user text."""
        return list(
            self.db.query(
                f"""SELECT r.*, a.name, a.timezone, a.starts_at AS appointment_starts_at,
                        a.status AS appointment_status
                    FROM reminders r JOIN appointments a ON a.id = r.appointment_id
                    WHERE {where} ORDER BY r.id LIMIT ?""",
                [*params, limit],
            )
        )

    def record_replay_request(
        self,
        reminder: dict[str, Any],
        run_id: int,
        operator: str,
        reason: str,
        forced: bool,
        now: datetime,
    ) -> bool:
        """Put a reminder back to pending, due now, with a record of who asked and why.

        Compare-and-set on the state it was seen in; the replay may go out until the
        appointment starts, whatever the rule's lateness limit said.
        """
        with self.transaction():
            cursor = self.db.execute(
                """UPDATE reminders SET state = 'pending', not_before = ?, expires_at = ?,
                       reason = ?, updated_at = ? WHERE id = ? AND state = ?""",
                [
                    iso(now),
                    reminder["appointment_starts_at"],
                    f"replay requested by {operator}",
                    iso(now),
                    reminder["id"],
                    reminder["state"],
                ],
            )
            if cursor.rowcount != 1:
                return False
            self.db.execute(
                """INSERT INTO replays (reminder_id, run_id, operator, reason, forced,
                       from_state, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [
                    reminder["id"],
                    run_id,
                    operator,
                    reason,
                    int(forced),
                    reminder["state"],
                    iso(now),
                ],
            )
        return True

    def list_dispatches_of(self, reminder_id: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM dispatches WHERE reminder_id = ? ORDER BY id", [reminder_id]
            )
        )

    def list_replays_of(self, reminder_id: int) -> list[dict[str, Any]]:
        return list(
            self.db.query("SELECT * FROM replays WHERE reminder_id = ? ORDER BY id", [reminder_id])
        )
