"""Our own errors and the exit codes they map to; `cli.py` alone turns them into messages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Exit codes of every command (see the README and `reminder --help`)."""

    OK = 0
    PROBLEMS = 1  # ran, but some reminders failed, are in doubt or wait for a retry
    USAGE = 2  # usage, configuration or input error: nothing was changed
    STALE_LOCK = 75  # the lock holder has held it longer than the stale limit


class ReminderError(Exception):
    """An error the user can act on; its text says what went wrong and what to do."""

    exit_code = ExitCode.USAGE


class ConfigError(ReminderError):
    """A configuration problem, named by file and key."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + problem)


@dataclass(frozen=True)
class RowProblem:
    """One fault in one row of an input file."""

    line: int
    column: str
    reason: str

    def describe(self, filename: str) -> str:
        column = f" {self.column}:" if self.column else ""
        return f"{filename}:{self.line}:{column} {self.reason}"


class InputError(ReminderError):
    """An input file with problems; nothing from it was imported."""

    def __init__(self, filename: str, problems: list[RowProblem], summary: str = "") -> None:
        self.filename, self.problems = filename, problems
        super().__init__(summary or f"{filename}: {len(problems)} problem(s); nothing imported")


class LockTimeout(ReminderError):
    """The run lock could not be taken in time."""

    exit_code = ExitCode.PROBLEMS


class Outcome(StrEnum):
    """What a provider call came to."""

    SENT = "sent"
    TRANSIENT = "transient"  # definitely not accepted; try again later
    PERMANENT = "permanent"  # refused for good
    UNKNOWN = "unknown"  # the provider may have accepted it


class SendError(Exception):
    """A transport's failure, classified. `code` and `text` are journaled as they are."""

    def __init__(
        self,
        outcome: Outcome,
        code: str,
        text: str,
        *,
        stop_run: bool = False,
        opted_out: bool = False,
    ) -> None:
        super().__init__(f"{outcome.value}: {code}: {text}")
        self.outcome, self.code, self.text = outcome, code, text
        self.stop_run = stop_run  # every other send would fail the same way (bad credentials)
        self.opted_out = opted_out  # the recipient unsubscribed: remember and suppress
