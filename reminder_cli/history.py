"""The `show` use case: a reminder's whole story (appointment, plan, every attempt, every
replay), found by reminder id, appointment id or recipient."""

from __future__ import annotations

from typing import Any

from reminder_cli.errors import ReminderError
from reminder_cli.journal import Journal


def load_history(
    journal: Journal,
    reminder_ids: tuple[int, ...] = (),
    appointment: str | None = None,
    recipient: str | None = None,
) -> list[dict[str, Any]]:
    """Each matching reminder with its appointment, dispatch records and replays."""
    where: list[str] = []
    params: list[object] = []
    if reminder_ids:
        where.append(f"r.id IN ({', '.join('?' for _ in reminder_ids)})")
        params.extend(reminder_ids)
    if appointment:
        where.append("r.appointment_id = ?")
        params.append(appointment)
    if recipient:
        where.append("r.recipient = ?")
        params.append(recipient)
    if not where:
        raise ReminderError("name a reminder id, or use --appointment or --recipient")
    reminders = journal.list_reminders(" OR ".join(where), params, limit=500)
    if not reminders:
        raise ReminderError("no reminder matches; `reminder status` lists recent ones")
    story = []
    for reminder in reminders:
        story.append(
            {
                "reminder": reminder,
                "appointment": journal.load_appointment(reminder["appointment_id"]),
                "attempts": journal.list_dispatches_of(reminder["id"]),
                "replays": journal.list_replays_of(reminder["id"]),
            }
        )
    return story
