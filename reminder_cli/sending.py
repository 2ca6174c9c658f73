"""The `send-due` use case: under the run lock, sweep what a dead run left in doubt, expire what
is too late, then send every due reminder through the dispatch path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from reminder_cli.config import Config
from reminder_cli.dispatch import Clock, Dispatcher, Report, Settings, due_rows, mask
from reminder_cli.journal import Journal
from reminder_cli.lock import RunLock, lock_path_for, read_holder
from reminder_cli.render import Renderer
from reminder_cli.transports import Transport, make_transport


@dataclass
class SendDueResult:
    """What `send-due` did; `lock_busy` when another run held the lock (nothing was done)."""

    report: Report
    run_id: int | None = None
    lock_busy: bool = False
    lock_stale: str = ""


def settings_from(config: Config, workers: int | None, time_budget: float | None) -> Settings:
    return Settings(
        max_attempts=config.delivery.max_attempts,
        retry_interval=config.delivery.cron_interval,
        workers=workers or config.delivery.workers,
        time_budget=config.delivery.time_budget if time_budget is None else time_budget,
        recipient_cap=config.delivery.max_per_recipient_per_day,
        max_per_run=config.delivery.max_per_run,
        quiet_hours=config.quiet_hours,
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
        dispatcher = Dispatcher(
            journal, run_id, make_renderer(config), transports, settings, clock, stop
        )
        report = dispatcher.report
        try:
            for swept in journal.record_sweep(run_id, now):
                report.counts["unknown"] += 1
                report.problems.append(
                    f"reminder {swept['id']} ({swept['channel']} to {mask(swept['recipient'])}) "
                    "is in doubt: a run ended while sending it; check with the provider, then "
                    f"`reminder replay {swept['id']}` if it never arrived"
                )
            report.counts["expired"] += journal.record_expired_due(now)
            dispatcher.run(due_rows(journal, clock))
        except BaseException as exc:
            journal.record_run_end(
                run_id, "crashed", f"{type(exc).__name__}: {exc}", report.counts, clock()
            )
            raise
        finally:
            transports.close()
        outcome = "stopped_early" if report.stopped else ("problems" if report.problems else "ok")
        journal.record_run_end(run_id, outcome, report.stopped, report.counts, clock())
    return SendDueResult(report, run_id)
