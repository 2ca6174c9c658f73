"""The everyday commands: init, import, send-due, status."""

from __future__ import annotations

import os
from pathlib import Path

import click

from reminder_cli.cli import App, cli, lock_timeout_option, now, pass_app, stop_on_signals
from reminder_cli.errors import ConfigError, ExitCode, ReminderError


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
    if demo:
        out.print(f"Next: reminder --config {path} send-due")
    else:
        out.print(
            f"Next: edit {path} (practice, rules, [email], [sms]), then "
            f"`reminder --config {path} import APPOINTMENTS.csv`, then add the cron line "
            "of crontab.example"
        )


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
@lock_timeout_option
@pass_app
def import_(
    app: App, files: tuple[Path, ...], encoding: str, skip_invalid: bool, lock_timeout: float
) -> None:
    """Upsert appointments from CSV FILES and plan their reminders.

    A file with any invalid row imports nothing (exit 2) unless --skip-invalid is given;
    every bad row is listed with its line, column and reason.
    """
    from reminder_cli.importing import import_files
    from reminder_cli.output import errors, print_import_report

    config = app.config()
    journal = app.journal()
    report = import_files(
        journal,
        list(files),
        config,
        now(),
        encoding=encoding,
        skip_invalid=skip_invalid,
        lock_timeout=lock_timeout,
    )
    errors(report.problems)
    errors(report.notes)
    print_import_report(report, ", ".join(map(str, files)))
    if report.problems:
        raise click.exceptions.Exit(ExitCode.PROBLEMS)


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
    from reminder_cli.output import console, errors, is_terminal, print_send_report
    from reminder_cli.sending import send_due as run
    from reminder_cli.sending import settings_from

    config = app.sending_config()
    journal = app.journal(create=False)
    with stop_on_signals() as stop:
        result = run(journal, config, now, settings_from(config, workers, time_budget), stop=stop)
    if result.paused and is_terminal():
        for pause in result.paused:
            console().print(pause)
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
@click.option(
    "--check",
    is_flag=True,
    help="One summary line; exit 0 ok, 1 warning, 2 critical (for monitoring).",
)
@pass_app
def status(app: App, as_json: bool, check: bool) -> None:
    """What the journal says: warnings, counts by state, due and in-doubt reminders, last
    runs, failures, suppressed and expired reminders, data-quality problems, the lock."""
    from reminder_cli.output import print_json
    from reminder_cli.output.status_view import print_status
    from reminder_cli.status import Thresholds, check_verdict, load_status

    try:
        config = app.config() if app.db_path is None or app.config_path else None
        delivery = config.delivery if config else None
        thresholds = (
            Thresholds(delivery.cron_interval, delivery.stale_lock_after)
            if delivery
            else Thresholds()
        )
        journal = app.journal(create=False)
        zone = config.timezone if config else "UTC"
        data = load_status(journal, now(), thresholds, journal.migrated_from, zone)
    except ReminderError as exc:
        if not check:
            raise
        click.echo(f"REMINDERS CRITICAL: {exc}")  # monitoring shows stdout
        raise click.exceptions.Exit(2) from None
    if check:
        level, line = check_verdict(data)
        click.echo(line)
        raise click.exceptions.Exit(level)
    print_json(data) if as_json else print_status(data)


@cli.command("sync-status")
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0),
    default=120,
    show_default=True,
    metavar="SECONDS",
    help="Stop asking the provider after this long.",
)
@pass_app
def sync_status(app: App, time_budget: float) -> None:
    """Fetch the final delivery status of SMS sent in the last days (also done at the end of
    each send-due, within its budget)."""
    import time
    from typing import cast

    from reminder_cli.settling import ProviderLookup, sync_delivery_status
    from reminder_cli.transports import make_transport

    config = app.sending_config()
    if config.sms.transport != "twilio":
        click.echo("Nothing to do: [sms] transport is not twilio.")
        return
    journal = app.journal(create=False)
    deadline = time.monotonic() + time_budget
    transport = make_transport("sms", config)
    try:
        counts = sync_delivery_status(
            journal, cast(ProviderLookup, transport), now(), lambda: time.monotonic() < deadline
        )
    finally:
        transport.close()
    click.echo(
        ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        or "No SMS waiting for a final status."
    )
