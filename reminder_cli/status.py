"""The `status` use case: what the journal says, as one JSON-ready dict (see interface.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reminder_cli.journal import Journal, iso
from reminder_cli.lock import lock_path_for, read_holder

RUN_FIELDS = ("id", "kind", "started_at", "finished_at", "outcome", "reason", "sent", "failed",
              "unknown", "retrying", "suppressed", "expired")  # fmt: skip


def load_status(journal: Journal, now: datetime) -> dict[str, Any]:
    holder = read_holder(lock_path_for(journal.path))
    next_due = journal.load_next_due(now)
    last = journal.load_last_run()
    last_run = {k: last[k] for k in RUN_FIELDS} if last else None
    if last_run and last_run["outcome"] == "running" and not holder.held:
        last_run["outcome"] = "crashed"
    return {
        "journal": str(journal.path),
        "counts": journal.load_counts(),
        "due_now": journal.count_due(now),
        "next_due_at": iso(next_due) if next_due else None,
        "in_doubt": [
            {k: r[k] for k in ("id", "channel", "recipient", "claimed_at", "reason", "state")}
            | {"appointment_id": r["appointment_id"]}
            for r in journal.list_in_doubt(include_sending=not holder.held)
        ],
        "last_run": last_run,
        "lock": {
            "held": holder.held,
            "pid": holder.pid,
            "since": iso(holder.since) if holder.since else None,
        },
    }
