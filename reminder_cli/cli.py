"""The command line: parses options, builds the pieces, calls one use case per command,
prints the result and picks the exit code. No logic of its own.
"""

from __future__ import annotations

import os
import signal
import threading
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


pass_app = click.make_pass_decorator(App)


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
def cli(ctx: click.Context, config_path: Path | None, db_path: Path | None) -> None:
    """Appointment reminders by email and SMS, sent from cron at most once.

    Import appointments, let cron run `reminder send-due` every 5 minutes, and see what
    happened to every reminder with `reminder status`.
    """
    ctx.obj = App(config_path, db_path)


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--demo", is_flag=True, help="Also load sample appointments around now.")
@click.option("--name", default="Maple Street Clinic", show_default=True, help="Practice name.")
@click.option(
    "--timezone", default="America/Chicago", show_default=True, help="Practice time zone (IANA)."
)
def init(directory: Path, demo: bool, name: str, timezone: str) -> None:
    """Write a commented reminder.toml and an empty journal in DIRECTORY."""
    from reminder_cli.config import check_zone, load_config
    from reminder_cli.importing import import_files
    from reminder_cli.journal import Journal
    from reminder_cli.output import console, print_import_report
    from reminder_cli.scaffold import write_config, write_demo_csv

    try:
        check_zone(timezone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone")
    try:
        path = write_config(directory, name, timezone)
    except FileExistsError:
        raise ConfigError(str(directory / "reminder.toml"), "", "already exists; not overwritten")
    config = load_config(path, os.environ)
    journal = Journal.open(config.journal_path)
    out = console()
    out.print(f"Wrote {path} and the journal {config.journal_path}")
    if demo:
        csv_path = write_demo_csv(directory / "appointments.csv", now(), timezone)
        report = import_files(journal, [csv_path], config, now())
        print_import_report(report, str(csv_path))
    out.print(f"Next: reminder --config {path} send-due")


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="Text encoding of the files (spreadsheets often save cp1252).",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows even if some are bad (listing the bad ones).",
)
@pass_app
def import_(app: App, files: tuple[Path, ...], encoding: str, skip_invalid: bool) -> None:
    """Upsert appointments from CSV FILES and plan their reminders.

    A file with any invalid row imports nothing (exit 2) unless --skip-invalid is given;
    every bad row is listed with its line, column and reason.
    """
    from reminder_cli.importing import import_files
    from reminder_cli.output import errors, print_import_report

    config = app.config()
    journal = app.journal()
    report = import_files(
        journal, list(files), config, now(), encoding=encoding, skip_invalid=skip_invalid
    )
    errors(report.problems)
    errors(report.notes)
    print_import_report(report, ", ".join(map(str, files)))
    if report.problems:
        raise click.exceptions.Exit(ExitCode.PROBLEMS)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stop


@cli.command("send-due")
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop claiming new work after this long [delivery.time_budget].",
)
@click.option("--workers", type=click.IntRange(min=1), help="Parallel provider calls.")
@pass_app
def send_due(app: App, time_budget: float | None, workers: int | None) -> None:
    """Send every reminder that is due now (the cron job).

    Quiet when all went well and no terminal is attached; each problem is one line on stderr.
    """
    from reminder_cli.output import errors, print_send_report
    from reminder_cli.sending import send_due as run
    from reminder_cli.sending import settings_from

    config = app.config()
    journal = app.journal()
    result = run(
        journal, config, now, settings_from(config, workers, time_budget), stop=_stop_on_signals()
    )
    if result.lock_busy:
        if result.lock_stale:
            errors([f"reminder: {result.lock_stale}"])
            raise click.exceptions.Exit(ExitCode.STALE_LOCK)
        return
    errors(result.report.problems)
    print_send_report(result.report, result.run_id)
    if result.report.problems:
        raise click.exceptions.Exit(ExitCode.PROBLEMS)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (see the README).")
@pass_app
def status(app: App, as_json: bool) -> None:
    """What the journal says: counts by state, in-doubt reminders, last run, lock holder."""
    from reminder_cli.output import print_json, print_status
    from reminder_cli.status import load_status

    data = load_status(app.journal(create=False), now())
    print_json(data) if as_json else print_status(data)


def main() -> None:
    cli(prog_name="reminder")
