"""The `replay` use case: a person sends chosen reminders again, through the same dispatch
path as `send-due`, with a record of who asked and why.

Safe by default: only failed, in-doubt and suppressed reminders are chosen; `sent` ones need
`--force` and an explicit id or `--state sent`; reminders whose appointment has started or
was cancelled are refused. Running the same replay twice sends nothing new: what the first
sent is `sent` now.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reminder_cli.config import Config
from reminder_cli.dispatch import Clock, Dispatcher, Report, Settings
from reminder_cli.errors import ReminderError
from reminder_cli.journal import Journal, iso, parse_iso
from reminder_cli.lock import RunLock, lock_path_for
from reminder_cli.sending import Transports, make_renderer
from reminder_cli.transports import Transport, make_transport

REPLAYABLE = ("failed", "unknown", "suppressed")


@dataclass(frozen=True)
class ReplayRequest:
    ids: tuple[int, ...] = ()
    appointment: str | None = None
    recipient: str | None = None
    states: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    channel: str | None = None
    force: bool = False
    ignore_cap: bool = False
    reason: str = ""
    operator: str = "unknown"

    @property
    def has_selector(self) -> bool:
        return bool(
            self.ids
            or self.appointment
            or self.recipient
            or self.states
            or self.since
            or self.until
        )


@dataclass
class Selection:
    chosen: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def select_for_replay(journal: Journal, request: ReplayRequest, now: datetime) -> Selection:
    """Which reminders the request names, split into those it may send and those it may not."""
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if request.ids:
        where.append(f"r.id IN ({', '.join('?' for _ in request.ids)})")
        params.extend(request.ids)
    for column, value in (
        ("r.appointment_id", request.appointment),
        ("r.recipient", request.recipient),
        ("r.channel", request.channel),
    ):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    states = request.states or (() if request.ids else REPLAYABLE)
    if states:
        where.append(f"r.state IN ({', '.join('?' for _ in states)})")
        params.extend(states)
    if request.since:
        where.append("r.due_at >= ?")
        params.append(iso(request.since))
    if request.until:
        where.append("r.due_at < ?")
        params.append(iso(request.until))
    selection = Selection()
    found = journal.list_reminders(" AND ".join(where), params)
    missing = sorted(set(request.ids) - {r["id"] for r in found})
    if missing and not (
        request.appointment
        or request.recipient
        or request.states
        or request.since
        or request.until
        or request.channel
    ):
        raise ReminderError(
            f"no reminder with id {', '.join(map(str, missing))}; `reminder show --appointment "
            "APPT_ID` lists an appointment's reminders"
        )
    paused = journal.load_paused_channels()
    for reminder in found:
        pause = paused.get(reminder["channel"]) or paused.get("all")
        why = refusal(reminder, request, now) or (
            f"{reminder['channel']} is paused by {pause['paused_by']}: {pause['reason']}; "
            "`reminder resume` first"
            if pause
            else ""
        )
        if why:
            selection.refused.append((reminder, why))
        else:
            selection.chosen.append(reminder)
    return selection


def refusal(reminder: dict[str, Any], request: ReplayRequest, now: datetime) -> str:
    """Why this reminder may not be replayed, or "" if it may."""
    state = reminder["state"]
    if reminder["appointment_status"] == "cancelled":
        return "its appointment was cancelled"
    if parse_iso(reminder["appointment_starts_at"]) <= now:
        return "its appointment has already started"
    if state == "sent" and not request.force:
        return "already sent; add --force to send it again"
    if state not in (*REPLAYABLE, "sent"):
        return {"pending": "already waiting to be sent", "sending": "being sent right now"}.get(
            state, f"it is {state}; nothing to replay"
        )
    return ""


def run_replay(
    journal: Journal,
    config: Config,
    clock: Clock,
    request: ReplayRequest,
    chosen: list[dict[str, Any]],
    settings: Settings,
    *,
    lock_timeout: float,
    stop: threading.Event | None = None,
    on_finish: Callable[[], None] | None = None,
    transport_factory: Callable[[str, Config], Transport] = make_transport,
) -> tuple[int, Report]:
    """Wait for the run lock, put the chosen reminders back to pending (recording who and
    why), and send them through the dispatch path. Returns the run id and its report."""
    lock = RunLock(lock_path_for(journal.path))
    lock.acquire_waiting("replay", lock_timeout)
    with lock:
        now = clock()
        run_id = journal.record_run_start("replay", now)
        report = Report()
        requested = []
        for reminder in chosen:
            if journal.record_replay_request(
                reminder, run_id, request.operator, request.reason, request.force, now
            ):
                requested.append(reminder["id"])
            else:
                report.problems.append(
                    f"reminder {reminder['id']} changed state meanwhile; not replayed "
                    "(run the replay again to see why)"
                )
        transports = Transports(config, transport_factory)
        dispatcher = Dispatcher(
            journal,
            run_id,
            make_renderer(config),
            transports,
            settings,
            clock,
            stop,
            on_finish=on_finish,
        )
        dispatcher.report = report
        try:
            dispatcher.run(journal.load_due_rows(requested) if requested else [])
        finally:
            transports.close()
        outcome = "stopped_early" if report.stopped else ("problems" if report.problems else "ok")
        journal.record_run_end(run_id, outcome, report.stopped, report.counts, clock())
    return run_id, report
