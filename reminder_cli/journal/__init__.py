"""The SQLite journal: the only package that writes SQL.

Every reminder's life is here: planned, claimed (before any provider call), finished (outcome
and state in one transaction). Times are stored as ISO 8601 UTC text, to the second, so that
text order is time order.
"""

from __future__ import annotations

from reminder_cli.journal.admin import AdminQueries
from reminder_cli.journal.base import ensure_private_file, iso, parse_iso
from reminder_cli.journal.delivery import DeliveryQueries
from reminder_cli.journal.dispatching import DispatchQueries, DueRow
from reminder_cli.journal.planning import PlanningQueries
from reminder_cli.journal.reports import ReportQueries


class Journal(PlanningQueries, DispatchQueries, DeliveryQueries, AdminQueries, ReportQueries):
    """An open journal. Use from one thread only."""


__all__ = ["DueRow", "Journal", "ensure_private_file", "iso", "parse_iso"]
