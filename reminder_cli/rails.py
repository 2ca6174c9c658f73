"""Safety rails that bound the damage of any bug, backlog or clock oddity: pure decisions.

- Quiet hours: no message on a quiet channel in the recipient's local night. The planner moves
  a due time inside them earlier, to `lead` before they begin; `send-due` defers one found due
  inside them to their end, or expires it if it would be useless by then.
- Recipient cap: at most N reminders per recipient in any rolling 24 hours (sent, in doubt or
  in flight), whatever the journal holds.
The recipient's local time is the appointment's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from reminder_cli.planner import resolve_local

CAP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class QuietHours:
    start: time = time(21, 0)
    end: time = time(8, 0)
    lead: timedelta = timedelta(minutes=30)
    channels: tuple[str, ...] = ("sms",)

    def applies_to(self, channel: str) -> bool:
        return channel in self.channels and self.start != self.end

    def period_around(self, moment: datetime, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The quiet period (start, end, aware UTC) that `moment` falls in, if any."""
        local = moment.astimezone(zone)
        day, wall = local.date(), local.time().replace(tzinfo=None)
        one = timedelta(days=1)
        if self.start < self.end:  # within one day, e.g. 12:00-14:00
            inside = self.start <= wall < self.end
            first = day
        elif wall >= self.start:  # overnight, before midnight
            inside, first = True, day
        else:  # overnight, after midnight
            inside, first = wall < self.end, day - one
        if not inside:
            return None
        last = first if self.start < self.end else first + one
        begin = resolve_local(datetime.combine(first, self.start), zone)
        finish = resolve_local(datetime.combine(last, self.end), zone)
        return begin, finish

    def plan_due(self, due: datetime, zone: ZoneInfo, channel: str) -> datetime:
        """A due time moved out of quiet hours: to `lead` before they begin."""
        if not self.applies_to(channel):
            return due
        period = self.period_around(due, zone)
        return period[0] - self.lead if period else due


@dataclass(frozen=True)
class Gate:
    """What to do with a due reminder instead of sending it now."""

    state: str  # "pending" (deferred), "expired" or "suppressed"
    reason: str
    not_before: datetime | None = None


def quiet_gate(
    quiet: QuietHours, channel: str, zone: ZoneInfo, now: datetime, expires_at: datetime
) -> Gate | None:
    """None if it may go now; otherwise wait for the end of quiet hours, or expire."""
    if not quiet.applies_to(channel):
        return None
    period = quiet.period_around(now, zone)
    if period is None:
        return None
    end_local = period[1].astimezone(zone)
    if period[1] >= expires_at:
        return Gate(
            "expired",
            f"due in quiet hours; they end at {end_local:%H:%M} local time, "
            "after it stops being useful",
        )
    return Gate(
        "pending", f"waiting for quiet hours to end at {end_local:%H:%M} local time", period[1]
    )


def cap_gate(sent_recently: int, cap: int) -> Gate | None:
    if cap and sent_recently >= cap:
        return Gate(
            "suppressed",
            f"recipient cap: {sent_recently} reminder(s) already went to "
            f"this recipient in the last 24 hours (limit {cap})",
        )
    return None
