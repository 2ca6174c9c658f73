"""The `status` use case: what the journal says, as one JSON-ready dict (see interface.md),
with health warnings and the monitoring verdict of `status --check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reminder_cli.journal import Journal, iso, parse_iso
from reminder_cli.lock import lock_path_for, read_holder
from reminder_cli.schema import MIGRATIONS

RUN_FIELDS = (
    "id",
    "kind",
    "started_at",
    "finished_at",
    "outcome",
    "reason",
    "sent",
    "failed",
    "unknown",
    "retrying",
    "suppressed",
    "expired",
)
DAY = timedelta(days=1)
LIST_LIMIT = 20


@dataclass(frozen=True)
class Thresholds:
    cron_interval: timedelta = timedelta(minutes=5)
    stale_lock_after: timedelta = timedelta(minutes=30)
    failures_per_day: int = 5


def shown_path(path: Path) -> str:
    """The journal's path as the admin gave it: relative when it is below the current dir."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _run(row: dict[str, Any], lock_held: bool) -> dict[str, Any]:
    run = {k: row[k] for k in RUN_FIELDS}
    if run["outcome"] == "running" and not lock_held:
        run["outcome"] = "crashed"
    if row["finished_at"]:
        took = parse_iso(row["finished_at"]) - parse_iso(row["started_at"])
        run["duration_s"] = int(took.total_seconds())
    return run


def load_status(
    journal: Journal,
    now: datetime,
    thresholds: Thresholds,
    migrated_from: int | None = None,
    timezone: str = "UTC",
) -> dict[str, Any]:
    holder = read_holder(lock_path_for(journal.path))
    next_due = journal.load_next_due(now)
    runs = [_run(r, holder.held) for r in journal.list_runs(5)]
    status: dict[str, Any] = {
        "journal": shown_path(journal.path),
        "timezone": timezone,
        "counts": journal.load_counts(),
        "due_now": journal.count_due(now),
        "next_due_at": iso(next_due) if next_due else None,
        "in_doubt": [
            {k: r[k] for k in ("id", "channel", "recipient", "claimed_at", "reason", "state")}
            | {"appointment_id": r["appointment_id"]}
            for r in journal.list_in_doubt(include_sending=not holder.held)
        ],
        "last_run": runs[0] if runs else None,
        "lock": {
            "held": holder.held,
            "pid": holder.pid,
            "since": iso(holder.since) if holder.since else None,
        },
        "paused": [
            {"channel": c, "by": p["paused_by"], "since": p["paused_at"], "reason": p["reason"]}
            for c, p in journal.load_paused_channels().items()
        ],
        "runs": runs,
        "recent_failures": journal.list_in_state_since("failed", now - 7 * DAY, LIST_LIMIT),
        "suppressed": journal.list_in_state_since("suppressed", now - 7 * DAY, LIST_LIMIT),
        "expired": journal.list_in_state_since("expired", now - DAY, LIST_LIMIT),
        "data_quality": {
            "cannot_take_sms": [
                {
                    "appointment_id": a["id"],
                    "phone": a["phone"],
                    "reason": a["sms_problem"],
                    "no_usable_contact": not a["email"],
                }
                for a in journal.list_contact_problems(now)
            ],
            "opted_out": [
                {"recipient": o["recipient"], "since": o["recorded_at"], "reason": o["reason"]}
                for o in journal.list_opt_outs()
            ],
            "undelivered": journal.list_undelivered(now - 7 * DAY, LIST_LIMIT),
            "bounced": [
                {"recipient": f["recipient"], "reminder_id": f["id"], "reason": f["reason"]}
                for f in journal.list_in_state_since("failed", now - 30 * DAY, 200)
                if f["channel"] == "email" and f["reason"].startswith("smtp 5")
            ],
        },
        "sms_delivery": journal.load_sms_delivery(now - 7 * DAY),
        "schema": {"journal": journal.load_schema_version(), "program": len(MIGRATIONS)},
    }
    status["warnings"] = health_warnings(journal, status, now, thresholds, migrated_from)
    return status


def health_warnings(
    journal: Journal,
    status: dict[str, Any],
    now: datetime,
    limits: Thresholds,
    migrated_from: int | None,
) -> list[dict[str, str]]:
    """One line each, with what to do; level "warning" or "critical"."""
    warnings: list[dict[str, str]] = []

    def warn(level: str, text: str, kind: str = "") -> None:
        warnings.append({"level": level, "text": text} | ({"kind": kind} if kind else {}))

    for pause in status["paused"]:
        warn(
            "warning",
            f"sending is paused ({pause['channel']}) by {pause['by']} since "
            f"{pause['since']}: {pause['reason']}; `reminder resume` ends it",
            "pause",
        )
    lock = status["lock"]
    if lock["held"] and lock["since"] and now - parse_iso(lock["since"]) > limits.stale_lock_after:
        warn(
            "critical",
            f"the run lock has been held by pid {lock['pid']} since {lock['since']}, "
            "longer than stale_lock_after: is that process hung?",
        )
    last = journal.load_last_finished_run()
    silence = 3 * limits.cron_interval
    waiting = status["due_now"] or status["counts"]["pending"]
    if last and now - parse_iso(last["finished_at"]) > silence and waiting:
        warn(
            "warning",
            f"no send-due run has finished since {last['finished_at']} (more than 3 "
            "cron intervals): is cron running? see crontab.example",
        )
    elif last is None and status["due_now"]:
        warn(
            "warning",
            "reminders are due but send-due has never run: install the cron job "
            "(see crontab.example)",
        )
    if status["in_doubt"]:
        warn(
            "warning",
            f"{len(status['in_doubt'])} reminder(s) in doubt: check with the provider "
            "whether they arrived; `reminder show ID`, then `reminder replay ID` "
            "if not",
        )
    failed = journal.count_in_state_since("failed", now - DAY)
    if failed > limits.failures_per_day:
        warn(
            "warning",
            f"{failed} reminders failed in the last 24 hours: see the failures "
            "below (a provider or address problem?)",
        )
    if migrated_from is not None:
        warn(
            "warning",
            f"the journal's schema was {migrated_from}, older than this program's "
            f"{len(MIGRATIONS)}; it was migrated now: if cron runs another install "
            "of reminder-cli, upgrade it too",
        )
    return warnings


def check_verdict(status: dict[str, Any]) -> tuple[int, str]:
    """Monitoring convention: (0 ok | 1 warning | 2 critical, one summary line)."""
    warnings = status["warnings"]
    level = 2 if any(w["level"] == "critical" for w in warnings) else 1 if warnings else 0
    counts = status["counts"]
    summary = (
        f"{counts['sent']} sent, {counts['pending']} pending, {counts['failed']} failed, "
        f"{len(status['in_doubt'])} in doubt"
    )
    label = ("REMINDERS OK", "REMINDERS WARNING", "REMINDERS CRITICAL")[level]
    detail = f" - {warnings[0]['text']}" if warnings else ""
    extra = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
    return level, f"{label}: {summary}{detail}{extra}"
