"""Works out when each reminder is due: pure functions of the appointment, the rules and now.

Rules of time (documented in the README):
- "Nd" is N calendar days earlier at the same local wall-clock time in the appointment's zone;
  "Nh"/"Nm" are elapsed time.
- A computed local time that falls in a daylight-saving gap moves forward by the gap's length
  (02:30 on a spring-forward night becomes 03:30); one that occurs twice is the first occurrence.
- A reminder expires at its appointment's start or `max_late` after it was due, whichever is first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from reminder_cli.models import Appointment, PlannedReminder, Rule

if TYPE_CHECKING:
    from reminder_cli.rails import QuietHours


def is_gap(naive: datetime, zone: ZoneInfo) -> bool:
    """True if this local wall-clock time does not exist in the zone (skipped by DST)."""
    aware = naive.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive


def resolve_local(naive: datetime, zone: ZoneInfo) -> datetime:
    """A local wall-clock time as aware UTC: first occurrence in a fold, past the gap in a gap.

    With fold=0, zoneinfo reads a time in a gap with the offset from before the change, which
    lands the instant as far past the gap's start as the wall time was: 02:30 becomes 03:30.
    """
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def due_time(starts_at: datetime, zone: ZoneInfo, rule: Rule) -> datetime:
    """When a rule's reminder for an appointment starting at `starts_at` (aware) is due, in UTC."""
    if rule.unit == "d":
        local = starts_at.astimezone(zone).replace(tzinfo=None)
        return resolve_local(local - timedelta(days=rule.amount), zone)
    return starts_at.astimezone(UTC) - rule.lead


def expiry_time(starts_at: datetime, due_at: datetime, rule: Rule) -> datetime:
    """The first moment a reminder is no longer useful."""
    return min(due_at + rule.max_late, starts_at.astimezone(UTC))


def recipient_for(appointment: Appointment, channel: str) -> str | None:
    """The contact a channel uses for this appointment, if it has a usable one."""
    if channel == "email":
        return appointment.email or None
    return appointment.phone if appointment.phone and appointment.sms_ok else None


def plan_reminders(
    appointment: Appointment, rules: tuple[Rule, ...], quiet: QuietHours | None = None
) -> list[PlannedReminder]:
    """One reminder per rule and per channel the appointment has a contact for.

    A due time inside quiet hours moves earlier (see rails.QuietHours); its expiry does not.
    """
    if appointment.status != "scheduled":
        return []
    zone = ZoneInfo(appointment.timezone)
    planned = []
    for rule in rules:
        due = due_time(appointment.starts_at, zone, rule)
        expires = expiry_time(appointment.starts_at, due, rule)
        for channel in rule.channels:
            recipient = recipient_for(appointment, channel)
            if recipient:
                when = quiet.plan_due(due, zone, channel) if quiet else due
                planned.append(PlannedReminder(rule.name, channel, recipient, when, expires))
    return planned
