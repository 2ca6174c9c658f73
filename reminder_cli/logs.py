"""Logging set-up: `--verbose` (plain lines on stderr) and `--log-file PATH` (JSON lines).

Core modules log events with structured fields in `extra` (run_id, reminder_id, channel,
outcome, code, ms). Recipients are masked; message bodies and secrets are never logged.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

FIELDS = ("run_id", "reminder_id", "channel", "recipient", "outcome", "code", "ms", "state")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        return json.dumps(entry, ensure_ascii=False)


class Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={getattr(record, k)}" for k in FIELDS if hasattr(record, k))
        return f"{record.levelname.lower()}: {record.getMessage()}" + (
            f" {fields}" if fields else ""
        )


def configure(verbose: bool, log_file: Path | None) -> None:
    logger = logging.getLogger("reminder_cli")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(Plain())
        logger.addHandler(stream)
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(log_file, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
    if not logger.handlers:  # quiet: no log record is even built
        logger.addHandler(logging.NullHandler())
        logger.setLevel(logging.WARNING)
