"""reminder-cli: appointment reminders sent from cron at most once, journaled in SQLite."""

__version__ = "0.1.0"
