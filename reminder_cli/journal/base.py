"""The journal's base: opening (WAL, synchronous=FULL, busy time-out, foreign keys),
numbered migrations, and how times are stored (ISO 8601 UTC text, to the second)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import sqlite_utils

from reminder_cli.errors import ConfigError
from reminder_cli.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


def iso(moment: datetime) -> str:
    """An aware datetime as stored: UTC, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ensure_private_file(path: Path) -> None:
    """Create `path` readable by its owner only, if it does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


class JournalBase:
    """An open journal. Use from one thread only."""

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self.db, self.path = db, path
        self.migrated_from: int | None = None  # the schema it had, if this open migrated it

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Self:
        """Open (creating it mode 0600 if allowed) and migrate the journal at `path`."""
        if not path.exists():
            if not create:
                raise ConfigError(
                    str(path), "", "no journal here (run `reminder init` or `reminder import`)"
                )
            ensure_private_file(path)
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            journal = cls(db, path)
            journal.ensure_migrated()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(str(path), "", f"cannot open the journal: {exc}")
        return journal

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; inside an open one, simply part of it (no savepoint: an error
        rolls back the whole outer transaction, which keeps each step atomic too)."""
        if self.db.conn.in_transaction:
            yield
            return
        with self.db.atomic():
            yield

    def load_schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def ensure_migrated(self) -> None:
        """Apply every migration this journal has not had yet, each in its own transaction."""
        version = self.load_schema_version()
        if version > len(MIGRATIONS):
            raise ConfigError(
                str(self.path),
                "",
                f"journal schema {version} is newer than this program knows "
                f"({len(MIGRATIONS)}); upgrade reminder-cli",
            )
        if 0 < version < len(MIGRATIONS):
            self.migrated_from = version
        for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                for statement in filter(str.strip, sql.split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")
