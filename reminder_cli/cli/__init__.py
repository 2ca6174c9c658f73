"""The command line: parses options, builds the pieces, calls one use case per command,
prints the result and picks the exit code. No logic of its own.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reminder_cli import __version__
from reminder_cli.errors import ConfigError, ExitCode, InputError, ReminderError

EXIT_CODES = """\b
Exit codes:
  0   did what was asked (send-due: also "another run holds the lock")
  1   ran, but some reminders failed, are in doubt or wait for a retry
      (status --check: warning)
  2   usage, configuration or input error; nothing was changed
      (status --check: critical)
  75  send-due: the lock holder has held it longer than stale_lock_after"""


def now() -> datetime:
    """The one place that reads the clock."""
    return datetime.now(UTC)


class App:
    """What the commands share: where the config and journal are, loaded on first use."""

    def __init__(self, config_path: Path | None, db_path: Path | None) -> None:
        self.config_path, self.db_path = config_path, db_path
        self._config: Any = None

    def config(self) -> Any:
        from reminder_cli.config import load_config

        if self._config is None:
            path = self.config_path or Path("reminder.toml")
            if self.config_path is None and not path.exists():
                raise ConfigError(
                    str(path), "", "no config file here; give --config PATH or run `reminder init`"
                )
            self._config = load_config(path, os.environ)
        return self._config

    def sending_config(self) -> Any:
        """The config, with the transports' settings checked (for commands that send)."""
        from reminder_cli.transports import check_transports

        config = self.config()
        check_transports(config)
        return config

    def journal(self, create: bool = True) -> Any:
        from reminder_cli.journal import Journal

        return Journal.open(self.db_path or self.config().journal_path, create=create)


class Group(click.Group):
    """Turns our errors into one line on stderr and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from reminder_cli.output import errors

        try:
            return super().invoke(ctx)
        except InputError as exc:
            errors([p.describe(exc.filename) for p in exc.problems] + [str(exc)])
            raise click.exceptions.Exit(exc.exit_code) from None
        except ReminderError as exc:
            errors([f"reminder: {exc}"])
            raise click.exceptions.Exit(exc.exit_code) from None
        except sqlite3.Error as exc:  # a journal we cannot write: permissions, disk, owner
            errors(
                [
                    f"reminder: the journal cannot be used: {exc}; check the file's owner and "
                    "permissions (run as the user that owns it) and the free disk space"
                ]
            )
            raise click.exceptions.Exit(ExitCode.USAGE) from None


pass_app = click.make_pass_decorator(App)

lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a running send-due.",
)


@click.group(cls=Group, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reminder")
@click.option(
    "--config",
    "config_path",
    envvar="REMINDER_CONFIG",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file [env REMINDER_CONFIG; default ./reminder.toml].",
)
@click.option(
    "--db",
    "db_path",
    envvar="REMINDER_DB",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Journal file, overriding the config [env REMINDER_DB].",
)
@click.pass_context
@click.option("-v", "--verbose", is_flag=True, help="Log each step on stderr.")
@click.option(
    "--log-file",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append JSON-lines logs here (no message bodies, no secrets).",
)
def cli(
    ctx: click.Context,
    config_path: Path | None,
    db_path: Path | None,
    verbose: bool,
    log_file: Path | None,
) -> None:
    """Appointment reminders by email and SMS, sent from cron at most once.

    Import appointments, let cron run `reminder send-due` every 5 minutes, and see what
    happened to every reminder with `reminder status`.
    """
    from reminder_cli.logs import configure

    configure(verbose, log_file)
    ctx.obj = App(config_path, db_path)


def operator() -> str:
    """Who is at the keyboard, for the journal: SUDO_USER, else USER."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "unknown"


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """While inside: SIGTERM, SIGINT and SIGHUP (a closed terminal) stop claiming new work
    (in-flight sends finish and are recorded) instead of killing the process. The previous
    handlers come back after."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main() -> None:
    cli(prog_name="reminder")


from reminder_cli.cli import admin, core  # noqa: E402  (registers the commands)

__all__ = ["admin", "cli", "core", "main"]
