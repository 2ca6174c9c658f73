"""Everything printed: rich tables on a terminal, plain greppable lines otherwise.

The only package that imports rich. Patient data is printed with markup off.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # rich is imported on first use: cron's quiet send-due never needs it
    from rich.console import Console
    from rich.table import Table

    from reminder_cli.dispatch import Report
    from reminder_cli.importing import ImportReport


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    terminal = is_terminal(sys.stderr if stderr else sys.stdout)
    return Console(
        stderr=stderr,
        highlight=False,
        markup=False,
        no_color="NO_COLOR" in os.environ or None,
        soft_wrap=not terminal,
        width=None if terminal else 200,  # files and pipes get whole lines, for grep
    )


def errors(lines: list[str]) -> None:
    """One line each on stderr (cron mails them)."""
    for line in lines:
        print(line, file=sys.stderr)


def print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def local_time(stamp: str | None, zone: ZoneInfo, *, with_zone: bool = False) -> str:
    """A stored UTC time as people at the practice read it: "Jan 12 09:00" (+ " CST")."""
    if not stamp:
        return "-"
    moment = datetime.fromisoformat(stamp).astimezone(zone)
    return f"{moment:%b} {moment.day} {moment:%H:%M}" + (f" {moment:%Z}" if with_zone else "")


def table(title: str, *columns: str) -> Table:
    from rich.table import Table

    grid = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        grid.add_column(column)
    return grid


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
