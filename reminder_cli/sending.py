"""The `send-due` use case: under the run lock, sweep what a dead run left in doubt, expire what
is too late, then send every due reminder through the dispatch path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from reminder_cli.config import Config
from reminder_cli.dispatch import Clock, Dispatcher, Report, Settings, due_rows, mask
from reminder_cli.journal import Journal
from reminder_cli.lock import RunLock, lock_path_for, read_holder
from reminder_cli.render import Renderer
from reminder_cli.settling import (
    LOOK_BACK,
    ProviderLookup,
    settle_in_doubt_sms,
    sync_delivery_status,
)
from reminder_cli.transports import Transport, make_transport


@dataclass
class SendDueResult:
    """What `send-due` did; `lock_busy` when another run held the lock (nothing was done)."""

    report: Report
    run_id: int | None = None
    lock_busy: bool = False
    lock_stale: str = ""
    paused: list[str] = field(default_factory=list)  # one line per pause, for a terminal


def settings_from(config: Config, workers: int | None, time_budget: float | None) -> Settings:
    return Settings(
        max_attempts=config.delivery.max_attempts,
        retry_interval=config.delivery.cron_interval,
        workers=workers or config.delivery.workers,
        time_budget=config.delivery.time_budget if time_budget is None else time_budget,
        recipient_cap=config.delivery.max_per_recipient_per_day,
        max_per_run=config.delivery.max_per_run,
        quiet_hours=config.quiet_hours,
        max_per_second={"email": config.email.max_per_second, "sms": config.sms.max_per_second},
    )


class Transports:
    """Creates each channel's transport the first time a message needs it, and closes them."""

    def __init__(self, config: Config, factory: Callable[[str, Config], Transport]) -> None:
        self.config, self.factory = config, factory
        self._made: dict[str, Transport] = {}
        self._guard = threading.Lock()

    def __call__(self, channel: str) -> Transport:
        with self._guard:
            if channel not in self._made:
                self._made[channel] = self.factory(channel, self.config)
            return self._made[channel]

    def close(self) -> None:
        for transport in self._made.values():
            transport.close()


def make_renderer(config: Config) -> Renderer:
    return Renderer(
        config.practice_name,
        config.practice_phone,
        config.email.sender,
        config.templates_dir,
        max_segments=config.sms.max_segments,
    )


def send_due(
    journal: Journal,
    config: Config,
    clock: Clock,
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    transport_factory: Callable[[str, Config], Transport] = make_transport,
) -> SendDueResult:
    """One cron run. Returns at once (lock_busy) if another run holds the lock."""
    lock = RunLock(lock_path_for(journal.path))
    now = clock()
    if not lock.try_acquire("send-due", now):
        holder = read_holder(lock.path)
        result = SendDueResult(Report(), lock_busy=True)
        if holder.since and now - holder.since > config.delivery.stale_lock_after:
            result.lock_stale = (
                f"another {holder.command or 'run'} (pid {holder.pid}) has held {lock.path} since "
                f"{holder.since:%Y-%m-%d %H:%M} UTC, longer than stale_lock_after "
                f"({config.delivery.stale_lock_after}); check that process (is it hung?)"
            )
        return result
    with lock:
        run_id = journal.record_run_start("send-due", now)
        transports = Transports(config, transport_factory)
        renderer = make_renderer(config)
        dispatcher = Dispatcher(journal, run_id, renderer, transports, settings, clock, stop)
        report = dispatcher.report
        started = time.monotonic()

        def within(share: float) -> Callable[[], bool]:
            """Whether this share of the time budget is left, and no signal came."""
            limit = settings.time_budget * share
            return lambda: time.monotonic() - started < limit and not dispatcher.stop.is_set()

        twilio = config.sms.transport == "twilio"
        try:
            if "outbox" in (config.email.transport, config.sms.transport):
                from reminder_cli.transports.outbox import remove_partials

                remove_partials(config.outbox_dir)
            swept = journal.record_sweep(run_id, now)
            if twilio and journal.list_in_doubt_sms(now - LOOK_BACK, 1):
                lookup = cast(ProviderLookup, transports("sms"))
                settled = settle_in_doubt_sms(journal, lookup, renderer, now, within(0.25))
                report.counts["settled"] += settled["sent"] + settled["pending"]
            still = journal.load_states([row["id"] for row in swept])
            for row in swept:
                if still.get(row["id"]) != "unknown":
                    continue
                report.counts["unknown"] += 1
                report.problems.append(
                    f"reminder {row['id']} ({row['channel']} to {mask(row['recipient'])}) "
                    "is in doubt: a run ended while sending it; check with the provider, then "
                    f"`reminder replay {row['id']}` if it never arrived"
                )
            expired = journal.record_expired_due(now)
            if expired:
                report.counts["expired"] += expired
                report.problems.append(
                    f"reminder: {expired} reminder(s) expired unsent, too late to be useful "
                    "(was send-due not running?); `reminder status` lists them"
                )
            dispatcher.run(due_rows(journal, clock))
            if twilio and within(1.0)() and journal.list_sms_to_sync(clock() - LOOK_BACK, 1):
                lookup = cast(ProviderLookup, transports("sms"))
                sync_delivery_status(journal, lookup, clock(), within(1.0))
        except BaseException as exc:
            journal.record_run_end(
                run_id, "crashed", f"{type(exc).__name__}: {exc}", report.counts, clock()
            )
            raise
        finally:
            transports.close()
        outcome = "stopped_early" if report.stopped else ("problems" if report.problems else "ok")
        journal.record_run_end(run_id, outcome, report.stopped, report.counts, clock())
    paused = [
        f"Sending is paused ({channel}) by {p['paused_by']} since {p['paused_at']}: "
        f"{p['reason']}; `reminder resume` ends it"
        for channel, p in journal.load_paused_channels().items()
    ]
    return SendDueResult(report, run_id, paused=paused)
