"""The commands a person runs by hand: show, replay, pause, resume."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click

from reminder_cli.cli import App, cli, lock_timeout_option, now, operator, pass_app, stop_on_signals
from reminder_cli.errors import ExitCode, ReminderError
from reminder_cli.models import CHANNELS, STATES


def _recipient(app: App, text: str | None) -> str | None:
    """A recipient as the journal stores it: lower-case email, or E.164 phone."""
    if not text or "@" in text:
        return text.strip().lower() if text else None
    from reminder_cli.contacts import normalise_phone

    try:
        return normalise_phone(text, app.config().country)[0]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--recipient")


def _local_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 time as UTC; without an offset, in the practice's time zone."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a time like 2027-01-12T09:00 or 2027-01-12")
    if moment.tzinfo is None:
        app = ctx.find_object(App)
        moment = moment.replace(tzinfo=ZoneInfo(app.config().timezone) if app else UTC)
    return moment.astimezone(UTC)


@cli.command()
@click.argument("reminder_ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--appointment", metavar="APPT_ID", help="Every reminder of this appointment.")
@click.option("--recipient", metavar="CONTACT", help="Every reminder to this email or phone.")
@pass_app
def show(
    app: App, reminder_ids: tuple[int, ...], appointment: str | None, recipient: str | None
) -> None:
    """A reminder's history: the appointment, the plan, every attempt and every replay."""
    from reminder_cli.history import load_history
    from reminder_cli.output.history_view import print_history

    story = load_history(
        app.journal(create=False), reminder_ids, appointment, _recipient(app, recipient)
    )
    print_history(story)


@cli.command()
@click.argument("reminder_ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--appointment", metavar="APPT_ID", help="Reminders of this appointment.")
@click.option("--recipient", metavar="CONTACT", help="Reminders to this email or phone.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATES),
    help="Only reminders in this state (repeatable) [default: failed, unknown, suppressed].",
)
@click.option(
    "--since",
    callback=_local_time,
    metavar="TIME",
    help="Due at or after this time (practice zone).",
)
@click.option(
    "--until", callback=_local_time, metavar="TIME", help="Due before this time (practice zone)."
)
@click.option("--channel", type=click.Choice(CHANNELS), help="Only this channel.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.option("--force", is_flag=True, help="Also send reminders that were already sent.")
@click.option("--ignore-cap", is_flag=True, help="Do not apply the recipient cap.")
@click.option("--reason", default="", help="Why; recorded with your user name.")
@lock_timeout_option
@pass_app
def replay(
    app: App,
    reminder_ids: tuple[int, ...],
    appointment: str | None,
    recipient: str | None,
    states: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
    dry_run: bool,
    yes: bool,
    force: bool,
    ignore_cap: bool,
    reason: str,
    lock_timeout: float,
) -> None:
    """Send chosen reminders again, by hand, through the same path as send-due.

    Chooses failed, in-doubt and suppressed reminders unless --state says otherwise; sent
    ones need --force. Reminders whose appointment has started are refused. Who asked
    (SUDO_USER or USER) and --reason are recorded.
    """
    from dataclasses import replace

    from reminder_cli.output import errors, is_terminal
    from reminder_cli.output.history_view import print_replay_preview, print_replay_summary
    from reminder_cli.replaying import ReplayRequest, run_replay, select_for_replay
    from reminder_cli.sending import settings_from

    request = ReplayRequest(
        reminder_ids,
        appointment,
        _recipient(app, recipient),
        states,
        since,
        until,
        channel,
        force,
        ignore_cap,
        reason,
        operator(),
    )
    if not request.has_selector:
        raise ReminderError(
            "say which reminders: IDs, --appointment, --recipient, --state, --since or --until"
        )
    config = app.sending_config()
    journal = app.journal(create=False)
    selection = select_for_replay(journal, request, now())
    print_replay_preview(selection.chosen, selection.refused)
    if dry_run or not selection.chosen:
        return
    if not yes:
        if not (is_terminal() and is_terminal(sys.stdin)):
            raise ReminderError("no terminal to confirm on: add --yes to replay without asking")
        if not click.confirm(f"Send {len(selection.chosen)} reminder(s) now?"):
            click.echo("Nothing sent.")
            return
    settings = settings_from(config, None, None)
    if ignore_cap:
        settings = replace(settings, recipient_cap=0)
    bar = None
    if is_terminal():
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("Sending", total=len(selection.chosen))
        bar.start()
    try:
        with stop_on_signals() as stop:
            run_id, report = run_replay(
                journal,
                config,
                now,
                request,
                selection.chosen,
                settings,
                lock_timeout=lock_timeout,
                stop=stop,
                on_finish=(lambda: bar.advance(task)) if bar else None,
            )
    finally:
        if bar:
            bar.stop()
    errors(report.problems)
    print_replay_summary(report, run_id)
    if report.problems:
        raise click.exceptions.Exit(ExitCode.PROBLEMS)


@cli.command()
@click.option("--channel", type=click.Choice(CHANNELS), help="Pause only this channel.")
@click.option("--reason", required=True, help="Why; shown by status.")
@pass_app
def pause(app: App, channel: str | None, reason: str) -> None:
    """Stop send-due from sending anything (or one channel) until `reminder resume`."""
    journal = app.journal(create=False)
    journal.record_pause(channel or "all", operator(), reason, now())
    click.echo(f"Paused {channel or 'all channels'}; `reminder resume` ends it.")


@cli.command()
@click.option(
    "--channel",
    type=click.Choice([*CHANNELS, "all"]),
    help="Resume only this pause [default: every pause].",
)
@pass_app
def resume(app: App, channel: str | None) -> None:
    """End a pause: send-due sends what is due again."""
    removed = app.journal(create=False).record_resume(channel)
    click.echo("Resumed." if removed else "Nothing was paused.")
