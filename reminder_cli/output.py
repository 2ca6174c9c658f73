"""Everything printed: rich tables on a terminal, plain greppable lines otherwise.

The only module that imports rich. Patient data is printed with markup off.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from reminder_cli.dispatch import Report
from reminder_cli.importing import ImportReport


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def console(stderr: bool = False) -> Console:
    return Console(
        stderr=stderr,
        highlight=False,
        markup=False,
        no_color="NO_COLOR" in os.environ or None,
        soft_wrap=not is_terminal(sys.stderr if stderr else sys.stdout),
    )


def errors(lines: list[str]) -> None:
    """One line each on stderr (cron mails them)."""
    for line in lines:
        print(line, file=sys.stderr)


def print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column)
    return table


def print_status(status: dict[str, Any]) -> None:
    counts = status["counts"]
    last = status["last_run"]
    lock = status["lock"]
    if not is_terminal():
        print(f"journal {status['journal']}")
        print("counts " + " ".join(f"{state}={n}" for state, n in counts.items()))
        print(f"due_now {status['due_now']}")
        print(f"next_due_at {status['next_due_at'] or '-'}")
        for r in status["in_doubt"]:
            print(f"in_doubt id={r['id']} channel={r['channel']} recipient={r['recipient']} "
                  f"claimed_at={r['claimed_at']} reason={r['reason']}")  # fmt: skip
        if last:
            print(" ".join(f"last_run_{k}={last[k]}" for k in ("id", "started_at", "finished_at",
                  "outcome", "sent", "failed", "unknown")))  # fmt: skip
        print(f"lock held={str(lock['held']).lower()} pid={lock['pid'] or '-'} "
              f"since={lock['since'] or '-'}")  # fmt: skip
        return
    out = console()
    table = _table(f"Reminders in {status['journal']}", "state", "count")
    for state, count in counts.items():
        table.add_row(state, str(count))
    out.print(table)
    out.print(
        f"Due now: {status['due_now']}    Next due: {status['next_due_at'] or 'nothing planned'}"
    )
    if status["in_doubt"]:
        doubt = _table("In doubt (the provider may have them)", "id", "channel", "recipient",
                       "claimed at", "why")  # fmt: skip
        for r in status["in_doubt"]:
            doubt.add_row(str(r["id"]), r["channel"], r["recipient"], r["claimed_at"] or "-",
                          r["reason"])  # fmt: skip
        out.print(doubt)
    if last:
        out.print(
            f"Last run #{last['id']}: {last['outcome']}, started {last['started_at']}, "
            f"sent {last['sent']}, failed {last['failed']}, in doubt {last['unknown']}, "
            f"retrying {last['retrying']}, expired {last['expired']}"
            + (f" ({last['reason']})" if last["reason"] else "")
        )
    else:
        out.print("No run yet.")
    if lock["held"]:
        out.print(f"Lock held by pid {lock['pid']} since {lock['since']}")
    else:
        out.print("Lock: free")


def print_send_report(report: Report, run_id: int | None) -> None:
    """On a terminal only: a one-line summary of the run."""
    if not is_terminal():
        return
    c = report.counts
    line = (
        f"Run #{run_id}: sent {c['sent']}, failed {c['failed']}, in doubt {c['unknown']}, "
        f"retrying {c['retrying']}, expired {c['expired']}, suppressed {c['suppressed']}"
    )
    console().print(line + (f"; {report.stopped}" if report.stopped else ""))


def print_import_report(report: ImportReport, names: str) -> None:
    c = report.counts
    console().print(
        f"Imported {names}: {c['rows']} rows, {c['added']} added, {c['updated']} updated, "
        f"{c['unchanged']} unchanged, {c['invalid']} invalid; reminders: {c['planned']} planned, "
        f"{c['cancelled']} cancelled, {c['expired']} expired when planned"
    )
