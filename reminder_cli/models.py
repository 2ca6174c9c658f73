"""Plain data shared by the modules: states, rules, appointments, messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class State(StrEnum):
    """A reminder's state; see delivery.md for the transitions."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"


STATES: tuple[str, ...] = tuple(s.value for s in State)
CHANNELS: tuple[str, ...] = ("email", "sms")


@dataclass(frozen=True)
class Rule:
    """When to remind: `amount` `unit` ("d" calendar days, "h"/"m" elapsed) before the start."""

    name: str
    amount: int
    unit: str
    channels: tuple[str, ...]
    max_late: timedelta

    @property
    def before(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def lead(self) -> timedelta:
        """The nominal lead time (a calendar day counts as 24 hours here)."""
        return {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}[
            self.unit
        ] * self.amount


@dataclass(frozen=True)
class Appointment:
    """One appointment as imported; `starts_at` is aware UTC."""

    id: str
    name: str
    email: str | None
    phone: str | None
    starts_at: datetime
    timezone: str
    status: str = "scheduled"
    location: str = ""
    clinician: str = ""
    sms_ok: bool = True
    sms_problem: str = ""
    source_hash: str = ""


@dataclass(frozen=True)
class PlannedReminder:
    """A reminder the planner wants for an appointment."""

    rule: str
    channel: str
    recipient: str
    due_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Claimed:
    """A reminder claimed for sending, with what rendering needs."""

    reminder_id: int
    dispatch_id: int
    attempt: int
    rule: str
    channel: str
    recipient: str
    due_at: datetime
    expires_at: datetime
    appointment: Appointment
    claimed_at: datetime | None = None
    fingerprint: str | None = None  # of the text this attempt sends (see smstext)


@dataclass(frozen=True)
class Message:
    """A rendered message, ready for a transport."""

    reminder_id: int
    channel: str
    to: str
    body: str
    subject: str = ""
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    detail: dict[str, object] = field(default_factory=dict)  # journaled with the attempt
