"""The one dispatch path, for `send-due` and `replay`: claim, send, finish.

1. Claim: one committed transaction moves the reminder pending -> sending (compare-and-set)
   and writes the attempt's dispatch record, before any provider is called.
2. Send: render, then hand it to the transport on a bounded pool of worker threads.
3. Finish: one transaction writes the attempt's outcome and the reminder's new state.

The journal is used from the calling thread only; workers only call transports.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from reminder_cli.errors import Outcome, SendError
from reminder_cli.journal import DueRow, Journal
from reminder_cli.models import CHANNELS, Claimed, Message, State
from reminder_cli.pacing import TokenBucket
from reminder_cli.rails import CAP_WINDOW, Gate, QuietHours, cap_gate, quiet_gate
from reminder_cli.render import Renderer, RenderError
from reminder_cli.smstext import body_fingerprint
from reminder_cli.transports import Transport

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def mask(recipient: str) -> str:
    """A recipient shortened for logs and cron mail: a***@example.org, +1312***0142."""
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{recipient[:5]}***{recipient[-4:]}" if len(recipient) > 9 else "***"


def retry_delay(attempt: int, interval: timedelta, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter: one cron interval after the first attempt, then 2x, 4x...

    Jitter only adds (up to a quarter), so no retry comes before the next cron run.
    """
    factor: float = 2 ** (attempt - 1) * (1 + rng.random() / 4)
    return interval * factor


@dataclass(frozen=True)
class Settings:
    max_attempts: int = 5
    retry_interval: timedelta = timedelta(minutes=5)
    workers: int = 8
    time_budget: float = 240.0
    recipient_cap: int = 3  # per rolling 24 hours; 0 = off
    max_per_run: int = 0  # 0 = off
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    max_per_second: dict[str, float] = field(default_factory=dict)  # by channel; 0 = no limit


@dataclass
class Report:
    """What a run did: counts by outcome and one line per problem."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    stopped: str = ""  # why the run stopped claiming early, if it did

    def problem(self, claimed: Claimed, what: str) -> None:
        self.problems.append(
            f"reminder {claimed.reminder_id} ({claimed.channel} to {mask(claimed.recipient)}): "
            + what
        )


@dataclass
class _Result:
    provider_id: str = ""
    error: SendError | None = None
    seconds: float = 0.0
    detail: dict[str, object] = field(default_factory=dict)


def _call(transport: Transport, message: Message, bucket: TokenBucket) -> _Result:
    """Runs on a worker thread: waits for its turn, then the transport call, timed, its
    failure classified."""
    bucket.take()
    started = time.monotonic()
    try:
        provider_id, error = transport.send(message), None
    except SendError as exc:
        provider_id, error = "", exc
    except Exception as exc:  # a transport bug must not lose the outcome: we cannot know
        provider_id = ""
        error = SendError(Outcome.UNKNOWN, "internal", f"{type(exc).__name__}: {exc}")
    return _Result(provider_id, error, time.monotonic() - started, message.detail)


class Dispatcher:
    """Claims, sends and finishes reminders, one run at a time, under the run lock."""

    def __init__(
        self,
        journal: Journal,
        run_id: int,
        renderer: Renderer,
        transport_for: Callable[[str], Transport],
        settings: Settings,
        clock: Clock,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        self.journal, self.run_id, self.renderer = journal, run_id, renderer
        self.transport_for, self.settings, self.clock = transport_for, settings, clock
        self.stop = stop or threading.Event()
        self.rng = rng or random.Random()
        self.on_finish = on_finish
        self.report = Report()
        self._started = time.monotonic()
        self._slowest = 0.0
        self._claims = 0
        self._rendered: Message | RenderError = RenderError("not rendered")
        self.buckets = {
            channel: TokenBucket(rate) for channel, rate in settings.max_per_second.items()
        } | {c: TokenBucket(0) for c in CHANNELS if c not in settings.max_per_second}
        self.paused = set(journal.load_paused_channels())

    # -- deciding ----------------------------------------------------------------------------

    def _may_claim(self) -> bool:
        if self.report.stopped:
            return False
        if self.stop.is_set():
            self.report.stopped = "stopped by a signal"
            return False
        if self.settings.max_per_run and self._claims >= self.settings.max_per_run:
            self.report.stopped = (
                f"max_per_run ({self.settings.max_per_run}) reached; the rest stays pending"
            )
            self.report.problems.append(f"reminder: {self.report.stopped}")
            return False
        elapsed = time.monotonic() - self._started
        if elapsed + self._slowest >= self.settings.time_budget:
            self.report.stopped = (
                f"time budget of {self.settings.time_budget:g} s reached; the rest waits "
                "for the next run"
            )
            return False
        return True

    def _finish(self, claimed: Claimed, result: _Result) -> None:
        """Journal the attempt's outcome and the reminder's new state, in one transaction."""
        now = self.clock()
        error = result.error
        if log.isEnabledFor(logging.INFO):
            log.info(
                "attempt finished",
                extra={
                    "run_id": self.run_id,
                    "reminder_id": claimed.reminder_id,
                    "channel": claimed.channel,
                    "recipient": mask(claimed.recipient),
                    "outcome": error.outcome.value if error else "sent",
                    "code": error.code if error else "",
                    "ms": round(result.seconds * 1000),
                },
            )
        if error and "429" in error.code:
            self.buckets[claimed.channel].slow_down()
        if error and error.opted_out:
            self.journal.record_opt_out(claimed.recipient, f"{error.code}: {error.text}", now)
        if error and error.stop_run and not self.report.stopped:
            self.report.stopped = f"stopped: {error.code}: {error.text}"
        state, reason, retry_at, problem = self._decide(claimed, error, now)
        self.journal.record_finish(
            claimed, state, now, provider_id=result.provider_id or None, error=error,
            reason=reason, not_before=retry_at,
            detail=json.dumps(result.detail) if result.detail else None,
        )  # fmt: skip
        self.report.counts["retrying" if state is State.PENDING else state.value] += 1
        if problem:
            self.report.problem(claimed, problem)

    def _decide(
        self, claimed: Claimed, error: SendError | None, now: datetime
    ) -> tuple[State, str, datetime | None, str]:
        """(new state, reason, retry time, the line for stderr) for an attempt's outcome."""
        if error is None:
            return State.SENT, "", None, ""
        last = f"{error.code}: {error.text}"
        if error.outcome is Outcome.UNKNOWN:
            reason = f"no answer from the provider: {last}"
            return State.UNKNOWN, reason, None, f"in doubt ({reason}); see `reminder status`"
        if error.outcome is Outcome.PERMANENT:
            return State.FAILED, last, None, f"failed: {last}"
        if claimed.attempt >= self.settings.max_attempts:
            reason = f"gave up after {claimed.attempt} attempts; last error {last}"
            return State.FAILED, reason, None, f"failed: {reason}"
        retry_at = now + retry_delay(claimed.attempt, self.settings.retry_interval, self.rng)
        if retry_at >= claimed.expires_at:
            reason = f"could not be sent before it expired; last error {last}"
            return State.EXPIRED, reason, None, f"expired: {reason}"
        reason = f"attempt {claimed.attempt} failed ({last}); retry after {retry_at:%H:%M} UTC"
        return State.PENDING, reason, retry_at, f"not sent this time, will retry: {last}"

    # -- the pump ----------------------------------------------------------------------------

    def run(self, due: Iterable[DueRow]) -> Report:
        """Claim due reminders (skipping any the rails stop) as workers free up, send them on
        the pool, finish each as it completes.

        Each turn is one transaction: the outcomes that completed and the claims for the
        workers they freed commit together, before any of those claims is sent. Fewer durable
        commits, same promise: a crash leaves at most what was claimed and not yet finished
        in doubt, never a duplicate.
        """
        rows = iter(due)
        in_flight: dict[Future[_Result], Claimed] = {}
        done: set[Future[_Result]] = set()
        exhausted = False
        with ThreadPoolExecutor(self.settings.workers, thread_name_prefix="send") as pool:
            while True:
                batch: list[tuple[Claimed, Message | RenderError]] = []
                # One transaction: the outcomes that came in, and the claims for the workers
                # they freed. It commits before any of the new claims is sent.
                with self.journal.transaction():
                    for future in done:
                        result = future.result()
                        self._slowest = max(self._slowest, result.seconds)
                        self._finish(in_flight.pop(future), result)
                    free = self.settings.workers - len(in_flight)
                    while len(batch) < free and not exhausted and not self.report.stopped:
                        claimed = self._claim_next(rows)
                        if claimed is None:
                            exhausted = True
                            break
                        batch.append((claimed, self._rendered))
                if self.on_finish:
                    for _ in done:
                        self.on_finish()
                for claimed, message in batch:
                    submitted = self._submit(pool, claimed, message)
                    if submitted is not None:
                        in_flight[submitted] = claimed
                if not in_flight:
                    if exhausted or self.report.stopped:
                        break
                    done = set()
                    continue
                done, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
        return self.report

    def _submit(
        self, pool: ThreadPoolExecutor, claimed: Claimed, message: Message | RenderError
    ) -> Future[_Result] | None:
        """Hand a claimed reminder to a worker, or finish it at once if it cannot be sent."""
        if isinstance(message, RenderError):
            error = SendError(Outcome.PERMANENT, "template", str(message))
            self._finish(claimed, _Result(error=error))
            return None
        try:
            transport = self.transport_for(claimed.channel)
        except Exception as exc:  # nothing was sent: back to pending, and stop the run
            error = (
                exc
                if isinstance(exc, SendError)
                else SendError(Outcome.TRANSIENT, "transport", f"{type(exc).__name__}: {exc}")
            )
            error.stop_run = True
            self._finish(claimed, _Result(error=error))
            return None
        return pool.submit(_call, transport, message, self.buckets[claimed.channel])

    def _claim_next(self, rows: Iterator[DueRow]) -> Claimed | None:
        """The next reminder claimed for sending, or None. The limits (signal, budget, run
        ceiling) are checked only once there is something left to claim."""
        for row in rows:
            if self.paused & {"all", row.channel}:
                continue  # paused by a person: it stays pending
            if not self._may_claim():
                return None  # this row stays pending for the next run
            now = self.clock()
            gate = self._gate(row, now)
            if gate is not None:
                if self.journal.record_gate(row.id, gate.state, gate.reason, gate.not_before, now):
                    self._count_gate(row, gate)
                    log.info(
                        gate.reason,
                        extra={"run_id": self.run_id, "reminder_id": row.id, "state": gate.state},
                    )
                continue
            claimed = self.journal.record_claim(row.id, self.run_id, now, self._render)
            if claimed is not None:
                self._claims += 1
                return claimed
        return None

    def _render(self, claimed: Claimed) -> str | None:
        """Render inside the claim's transaction, keeping the message for the send; returns the
        fingerprint of its text, committed with the claim."""
        try:
            self._rendered = self.renderer.render(claimed)
        except RenderError as exc:
            self._rendered = exc
            return None
        return body_fingerprint(self._rendered.body)

    def _gate(self, row: DueRow, now: datetime) -> Gate | None:
        """The first rail that stops this reminder now, if any."""
        if row.channel == "sms":
            opted_out = self.journal.is_opted_out(row.recipient)
            if opted_out:
                return Gate("suppressed", f"opted out: {opted_out}")
        zone = ZoneInfo(row.timezone)
        quiet = quiet_gate(self.settings.quiet_hours, row.channel, zone, now, row.expires_at)
        if quiet is not None:
            return quiet
        if self.settings.recipient_cap:
            recent = self.journal.count_sent_to(row.recipient, now - CAP_WINDOW)
            return cap_gate(recent, self.settings.recipient_cap)
        return None

    def _count_gate(self, row: DueRow, gate: Gate) -> None:
        if gate.state == "pending":
            self.report.counts["deferred"] += 1
            return
        self.report.counts[gate.state] += 1
        if gate.state == "suppressed":
            self.report.problems.append(
                f"reminder {row.id} ({row.channel} to {mask(row.recipient)}): suppressed: "
                f"{gate.reason}"
            )


def due_rows(journal: Journal, clock: Clock, batch: int = 500) -> Iterator[DueRow]:
    """Stream due reminders in due order, a batch at a time, each at most once."""
    seen: set[int] = set()
    while True:
        fresh = [r for r in journal.list_due(clock(), batch + len(seen)) if r.id not in seen]
        if not fresh:
            return
        for row in fresh[:batch]:
            seen.add(row.id)
            yield row
