"""The `import` use case: check whole files first, then upsert appointments and (re)plan
their reminders in one transaction. A file with a bad row imports nothing unless asked to
skip bad rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reminder_cli.config import Config
from reminder_cli.contacts import check_region
from reminder_cli.errors import ConfigError, InputError, RowProblem
from reminder_cli.journal import Journal, iso
from reminder_cli.lock import RunLock, lock_path_for
from reminder_cli.models import Appointment, PlannedReminder, State
from reminder_cli.planner import plan_reminders
from reminder_cli.rows import EXTRA, Defaults, check_row, read_rows, source_hash, with_hash


@dataclass
class ImportReport:
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # bad rows (skipped with --skip-invalid)
    notes: list[str] = field(default_factory=list)  # things the admin should know


def check_file(
    path: Path, encoding: str, defaults: Defaults, known: dict[str, str], report: ImportReport
) -> tuple[dict[str, Appointment | None], list[RowProblem]]:
    """Each valid row's appointment by id (None if unchanged since the last import), and
    every problem in the file."""
    changed: dict[str, Appointment | None] = {}  # None: unchanged since the journal's copy
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for row in read_rows(path, encoding, report.notes):
        report.counts["rows"] += 1
        appointment_id = (row.values.get("appointment_id") or "").strip()
        if appointment_id in first_line:
            problems.append(
                RowProblem(
                    row.line,
                    "appointment_id",
                    f"{appointment_id} is already on line {first_line[appointment_id]}",
                )
            )
            continue
        if appointment_id:
            first_line[appointment_id] = row.line
        digest = source_hash(row, defaults)
        if known.get(appointment_id) == digest and EXTRA not in row.values:
            report.counts["unchanged"] += 1
            changed[appointment_id] = None
            continue
        result = check_row(row, defaults)
        if isinstance(result, list):
            problems.extend(result)
        else:
            changed[appointment_id] = with_hash(result, digest)
            if result.sms_problem:
                report.notes.append(f"{path}:{row.line}: phone: {result.sms_problem}; no SMS")
    return changed, problems


def import_files(
    journal: Journal,
    paths: list[Path],
    config: Config,
    now: datetime,
    *,
    encoding: str = "utf-8",
    skip_invalid: bool = False,
    lock_timeout: float = 60.0,
) -> ImportReport:
    """Import CSV files; raise InputError (nothing written) if any row is bad and not skipping."""
    report = ImportReport()
    if not check_region(config.country):
        raise ConfigError(
            str(config.path),
            "practice.country",
            f"unknown region {config.country!r} (use a code like US or GB)",
        )
    defaults = Defaults(config.timezone, config.country, plan_signature(config))
    known = journal.load_source_hashes()
    latest: dict[str, Appointment | None] = {}  # across files, the last file's row wins
    for path in paths:
        if path.suffix.lower() == ".ics":
            raise InputError(str(path), [], f"{path}: iCalendar import is not built yet; use CSV")
        changed, problems = check_file(path, encoding, defaults, known, report)
        lines = [p.describe(str(path)) for p in problems]
        if problems and not skip_invalid:
            bad_rows = len({p.line for p in problems})
            raise InputError(
                str(path),
                problems,
                f"{path}: {bad_rows} invalid row(s); nothing imported "
                "(fix them, or import the rest with --skip-invalid)",
            )
        report.problems.extend(lines)
        report.counts["invalid"] += len({p.line for p in problems})
        latest.update(changed)
    todo = [appointment for appointment in latest.values() if appointment is not None]
    if not todo:
        return report
    # Under the run lock: a send-due never overlaps an import's long transaction, and no
    # reminder of a changed appointment is in flight while it is re-planned.
    with RunLock(lock_path_for(journal.path)) as lock:
        lock.acquire_waiting("import", lock_timeout)
        with journal.transaction():
            for appointment in todo:
                existed = appointment.id in known
                record_appointment(journal, appointment, config, now, report, existed)
    return report


def plan_signature(config: Config) -> str:
    """What planning depends on besides the row: a change re-plans every appointment."""
    return repr((config.rules, config.quiet_hours))


def _cancel_reason(appointment: Appointment, old: dict[str, object] | None) -> str:
    if appointment.status == "cancelled":
        return "the appointment was cancelled"
    if old and old["starts_at"] != iso(appointment.starts_at):
        return f"the appointment moved to {iso(appointment.starts_at)}"
    return "the appointment's contact or the rules changed"


def record_appointment(
    journal: Journal,
    appointment: Appointment,
    config: Config,
    now: datetime,
    report: ImportReport,
    existed: bool,
) -> None:
    """Upsert one appointment and bring its reminders in line with the plan."""
    old = journal.load_appointment(appointment.id) if existed else None
    journal.record_appointment(appointment, now)
    report.counts["updated" if old else "added"] += 1
    wanted: dict[tuple[str, str, str, str], PlannedReminder] = {
        (p.rule, p.channel, iso(appointment.starts_at), p.recipient): p
        for p in plan_reminders(appointment, config.rules, config.quiet_hours)
    }
    for reminder in journal.list_reminders_of(appointment.id) if old else []:
        key = (reminder["rule"], reminder["channel"], reminder["starts_at"], reminder["recipient"])
        plan = wanted.pop(key, None)
        if plan and reminder["state"] == State.CANCELLED:
            state, reason = _initial_state(plan, now)
            journal.record_replanned(reminder["id"], plan, state, reason, now)
            report.counts["planned" if state is State.PENDING else "expired"] += 1
        elif plan is None and reminder["state"] == State.PENDING:
            journal.record_cancelled(reminder["id"], _cancel_reason(appointment, old), now)
            report.counts["cancelled"] += 1
        elif plan is None and reminder["state"] == State.SENDING:
            report.notes.append(
                f"reminder {reminder['id']} was being sent when appointment {appointment.id} "
                "changed; `reminder status` shows how it ended"
            )
    for plan in wanted.values():
        state, reason = _initial_state(plan, now)
        journal.record_planned(appointment.id, appointment.starts_at, plan, state, reason, now)
        report.counts["planned" if state is State.PENDING else "expired"] += 1


def _initial_state(plan: PlannedReminder, now: datetime) -> tuple[State, str]:
    if now >= plan.expires_at:
        return State.EXPIRED, (
            f"planned too late to be useful (due {plan.due_at:%Y-%m-%d %H:%M} UTC, useful "
            f"until {plan.expires_at:%Y-%m-%d %H:%M} UTC)"
        )
    return State.PENDING, ""
