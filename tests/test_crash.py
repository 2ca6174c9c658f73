"""Crash safety and overlap of `send-due`, with real processes against a real SMTP server.

Every test runs `python -m reminder_cli` as a subprocess on a real journal in tmp_path, and
checks what the server (and the SMS outbox) received against what the journal says, read
straight from SQLite. The promise under test (delivery.md): a reminder is claimed before the
provider is called and finished after, so a run killed at any moment leaves at most its
in-flight reminders in `sending`; the next run turns them into `unknown` (in doubt) and never
sends them again; overlapping runs are kept apart by the lock.

The clock cannot be frozen in a subprocess, so appointments are placed relative to the real
time: they start in 20 hours, in a fixed-offset zone where it is early afternoon now, so their
"1d" reminders fell due 4 hours ago, expire in 8 hours, and no quiet hours are near.
"""

from __future__ import annotations

import asyncio
import csv
import email
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Handler,
    Received,
    SmtpServer,
    run_reminder,
    serving,
    wait_for,
    write_config,
)

SEED = int(os.environ.get("REMINDER_CRASH_SEED", "20270111"))
EMAIL_DOMAIN = "patients.example"


# -- a slow SMTP server that queues each message before it answers ------------------------


@dataclass
class QueueingHandler(Handler):
    """Like conftest's Handler, but the message is queued as soon as its DATA has arrived and
    the 250 comes `delay` seconds later, as a real MTA that is slow to answer. A client killed
    while it waits therefore leaves the message at the server: the case that makes a blind
    resend a duplicate. With `keep_on_hangup=False` it is conftest's behaviour (aiosmtpd
    cancels the handler when the client hangs up, so the message is lost).
    While `answering` is clear, every DATA waits, unanswered, until it is set again.
    `arrived` lists the X-Reminder-Id of every DATA that reached the server, kept or not.
    """

    keep_on_hangup: bool = True
    answering: threading.Event = field(default_factory=threading.Event)
    arrived: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.answering.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content)
        self.arrived.append(int(parsed["X-Reminder-Id"]))
        if self.keep_on_hangup:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        while not self.answering.is_set():
            await asyncio.sleep(0.01)
        if not self.keep_on_hangup:
            return await super().handle_DATA(server, session, envelope)
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK queued"


@pytest.fixture
def queueing_server() -> Iterator[SmtpServer]:
    handler = QueueingHandler()
    with serving(handler) as server:
        try:
            yield server
        finally:
            handler.answering.set()


def queueing(server: SmtpServer) -> QueueingHandler:
    assert isinstance(server.handler, QueueingHandler)
    return server.handler


# -- appointments, processes, and what really happened -------------------------------------


def afternoon_zone(now: datetime) -> str:
    """A fixed-offset IANA zone where it is 13:xx now (no DST, far from quiet hours)."""
    hours = (13 - now.hour) % 24
    hours = hours - 24 if hours > 12 else hours
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"  # Etc/GMT-3 is UTC+3


def email_of(i: int) -> str:
    return f"patient{i:04d}@{EMAIL_DOMAIN}"


def phone_of(i: int) -> str:
    return f"+1312555{i:04d}"


def write_appointments(directory: Path, count: int, *, sms_every: int = 0) -> Path:
    """`count` appointments, each with its own email (and every `sms_every`-th with a phone
    too), starting in 20 hours: their day-before reminders are due now and unexpired."""
    now = datetime.now(UTC).replace(microsecond=0)
    starts_at = (now + timedelta(hours=20)).isoformat()
    zone = afternoon_zone(now)
    path = directory / "appointments.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["appointment_id", "name", "email", "phone", "starts_at", "timezone"])
        for i in range(count):
            phone = phone_of(i) if sms_every and i % sms_every == 0 else ""
            writer.writerow([f"CR-{i:04d}", f"Patient {i}", email_of(i), phone, starts_at, zone])
    return path


def expected_recipients(count: int, sms_every: int = 0) -> set[str]:
    emails = {email_of(i) for i in range(count)}
    return emails | ({phone_of(i) for i in range(0, count, sms_every)} if sms_every else set())


def setup_practice(
    tmp_path: Path, server: SmtpServer, count: int, *, workers: int, sms_every: int = 0
) -> Path:
    """A practice sending email through `server` (SMS to the outbox), with `count`
    appointments imported; returns the config path."""
    config = write_config(
        tmp_path, email_transport="smtp", port=server.port, workers=workers, timeout=30
    )
    csv_path = write_appointments(tmp_path, count, sms_every=sms_every)
    code, out, err = run_reminder(config, "import", str(csv_path))
    assert code == 0, out + err
    reminders = load_reminders(tmp_path / "reminders.db")
    assert {r.recipient for r in reminders.values()} == expected_recipients(count, sms_every)
    assert {r.state for r in reminders.values()} == {"pending"}
    return config


def start_send_due(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reminder_cli", "--config", str(config), "send-due"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def status_json(config: Path) -> dict[str, Any]:
    code, out, err = run_reminder(config, "status", "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


@dataclass(frozen=True)
class Reminder:
    id: int
    channel: str
    recipient: str
    state: str
    reason: str


def load_reminders(db: Path) -> dict[int, Reminder]:
    """Every reminder as the journal holds it, read with plain sqlite3."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT id, channel, recipient, state, reason FROM reminders"
        ).fetchall()
    return {row[0]: Reminder(*row) for row in rows}


def load_dispatches(db: Path) -> list[tuple[int, int, str | None]]:
    """(reminder id, run id, outcome) of every dispatch record."""
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT reminder_id, run_id, outcome FROM dispatches").fetchall()


def deliveries(server: SmtpServer, outbox: Path) -> list[tuple[int, str]]:
    """(reminder id, recipient) of every message a provider got: each recipient of each
    message the SMTP server queued, and each SMS file in the outbox."""
    got = []
    for received in server.received:
        assert [received.message["To"]] == received.rcpt_tos
        got += [(int(received.message["X-Reminder-Id"]), r) for r in received.rcpt_tos]
    for path in outbox.glob("reminder-*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        got.append((int(record["reminder_id"]), record["to"]))
    return got


def assert_never_delivered_twice(got: list[tuple[int, str]], context: str) -> None:
    by_id = Counter(reminder_id for reminder_id, _ in got)
    by_recipient = Counter(recipient for _, recipient in got)
    assert [i for i, n in by_id.items() if n > 1] == [], f"reminder sent twice; {context}"
    assert [r for r, n in by_recipient.items() if n > 1] == [], f"recipient got two; {context}"


def assert_every_reminder_settled(
    db: Path, config: Path, got: list[tuple[int, str]], context: str
) -> dict[int, Reminder]:
    """Each reminder sent (and delivered exactly once) or in doubt (and delivered at most
    once); nothing else delivered; the journal's dispatch records agree; `status --json`
    lists exactly the in-doubt ones."""
    reminders = load_reminders(db)
    assert_never_delivered_twice(got, context)
    unsettled = [r for r in reminders.values() if r.state not in ("sent", "unknown")]
    assert unsettled == [], context
    sent = {i for i, r in reminders.items() if r.state == "sent"}
    unknown = {i for i, r in reminders.items() if r.state == "unknown"}
    delivered = {i for i, _ in got}
    assert sent <= delivered, f"journal says sent, server never got {sent - delivered}; {context}"
    assert delivered - sent <= unknown, f"delivered but neither sent nor in doubt; {context}"
    for reminder_id, recipient in got:
        assert reminders[reminder_id].recipient == recipient, context
    dispatches = load_dispatches(db)
    assert Counter(d[0] for d in dispatches) == Counter(list(reminders)), (
        f"one claim each; {context}"
    )
    assert {d[0]: d[2] for d in dispatches} == {i: r.state for i, r in reminders.items()}, context
    status = status_json(config)
    assert status["lock"]["held"] is False
    assert sorted(r["id"] for r in status["in_doubt"]) == sorted(unknown), context
    assert {r["state"] for r in status["in_doubt"]} <= {"unknown"}, context
    assert status["counts"]["sent"] == len(sent) and status["counts"]["unknown"] == len(unknown)
    return reminders


# -- 1. killed at random moments, many times -----------------------------------------------


def until(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.002)


def kill_at_a_random_moment(
    config: Path, server: SmtpServer, rng: random.Random, workers: int, delay: float
) -> tuple[str, int | None, str]:
    """Start send-due and SIGKILL it at a random moment: either a random time after the start
    (start-up, journal, lock, sweep or sending), or once the server has taken a random number
    of further messages plus a random part of one answer (mid-batch). Returns what was done,
    the exit code if it finished first, and its stderr."""
    handler = queueing(server)
    before = len(handler.arrived)
    proc = start_send_due(config)
    if rng.random() < 0.5:
        pause = rng.uniform(0.0, 0.8)
        until(lambda: proc.poll() is not None, pause)
        how = f"kill after {pause:.3f} s"
    else:
        more, extra = rng.randint(1, 2 * workers), rng.uniform(0.0, delay)
        until(lambda: proc.poll() is not None or len(handler.arrived) >= before + more, 10)
        time.sleep(extra)
        how = f"kill {extra:.3f} s after {more} more message(s) arrived"
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    finished = None if proc.returncode == -signal.SIGKILL else proc.returncode
    return how, finished, err


def crash_many_times(
    tmp_path: Path, server: SmtpServer, *, appointments: int, kills: int, workers: int,
    delay: float, seed: int,
) -> None:  # fmt: skip
    print(f"seed {seed} (set REMINDER_CRASH_SEED to repeat)")
    rng = random.Random(seed)
    server.handler.delay = delay
    config = setup_practice(tmp_path, server, appointments, workers=workers, sms_every=2)
    db, outbox = tmp_path / "reminders.db", tmp_path / "outbox"
    log: list[str] = []
    for k in range(kills):
        how, finished, err = kill_at_a_random_moment(config, server, rng, workers, delay)
        log.append(f"#{k}: {how}" + ("" if finished is None else f"; it exited {finished}"))
        context = f"seed {seed}, workers {workers}, runs: {'; '.join(log)}"
        assert finished in (None, 0, 1), f"{err}; {context}"
        # A run that finished by itself reports its problems one line each, not a traceback.
        assert all(line.startswith("reminder ") for line in err.splitlines()), f"{err}; {context}"
        assert_never_delivered_twice(deliveries(server, outbox), context)
        reminders = load_reminders(db)
        sending = {i for i, r in reminders.items() if r.state == "sending"}
        assert len(sending) <= workers, f"more than the in-flight left sending; {context}"
        open_claims = [d for d in load_dispatches(db) if d[2] is None]
        assert {d[0] for d in open_claims} == sending, context
        assert len({d[1] for d in open_claims}) <= 1, f"two runs left claims open; {context}"
    context = f"seed {seed}, workers {workers}, runs: {'; '.join(log)}"
    left_sending = {i for i, r in load_reminders(db).items() if r.state == "sending"}

    code, out, err = run_reminder(config, "send-due")

    assert code == (1 if left_sending else 0), f"{err}; {context}"
    assert out == ""
    reported = {int(line.split()[1]) for line in err.splitlines() if "is in doubt" in line}
    assert reported == left_sending, f"{err}; {context}"
    assert len(err.splitlines()) == len(left_sending), f"{err}; {context}"
    got = deliveries(server, outbox)
    reminders = assert_every_reminder_settled(db, config, got, context)
    assert {r.recipient for r in reminders.values()} == expected_recipients(appointments, 2)
    unknown = {i for i, r in reminders.items() if r.state == "unknown"}
    print("\n".join(log))
    print(f"{len(reminders) - len(unknown)} sent, {len(unknown)} in doubt, "
          f"{len(unknown & {i for i, _ in got})} of which the server has")  # fmt: skip


@pytest.mark.parametrize(("workers", "delay"), [(1, 0.05), (8, 0.2)])
def test_send_due_killed_at_random_moments_never_sends_a_reminder_twice(
    tmp_path: Path, queueing_server: SmtpServer, workers: int, delay: float
) -> None:
    crash_many_times(tmp_path, queueing_server, appointments=40, kills=8, workers=workers,
                     delay=delay, seed=SEED + workers)  # fmt: skip


@pytest.mark.torture
@pytest.mark.parametrize(("workers", "delay"), [(1, 0.02), (8, 0.1), (32, 0.2)])
def test_send_due_killed_hundreds_of_times_never_sends_a_reminder_twice(
    tmp_path: Path, queueing_server: SmtpServer, workers: int, delay: float
) -> None:
    crash_many_times(tmp_path, queueing_server, appointments=300, kills=80, workers=workers,
                     delay=delay, seed=SEED + 1000 + workers)  # fmt: skip


# -- 2. overlapping runs -------------------------------------------------------------------


def overlap(tmp_path: Path, server: SmtpServer, *, appointments: int, runs: int) -> None:
    handler = queueing(server)
    handler.delay = 0.05
    config = setup_practice(tmp_path, server, appointments, workers=4)
    handler.answering.clear()  # the first run to reach the server stalls there, holding the lock
    procs = [start_send_due(config) for _ in range(runs)]
    until(lambda: sum(p.poll() is not None for p in procs) >= runs - 1, 20)
    left_early = sum(p.poll() is not None for p in procs)
    handler.answering.set()
    results = [(*p.communicate(timeout=60), p.returncode) for p in procs]

    assert results == [("", "", 0)] * runs
    assert left_early == runs - 1
    got = deliveries(server, tmp_path / "outbox")
    assert sorted(r for _, r in got) == sorted(expected_recipients(appointments))
    reminders = assert_every_reminder_settled(tmp_path / "reminders.db", config, got, "overlap")
    assert {r.state for r in reminders.values()} == {"sent"}


def test_send_due_started_five_times_at_once_delivers_each_reminder_exactly_once(
    tmp_path: Path, queueing_server: SmtpServer
) -> None:
    overlap(tmp_path, queueing_server, appointments=24, runs=5)


@pytest.mark.torture
def test_send_due_started_twenty_times_at_once_delivers_each_reminder_exactly_once(
    tmp_path: Path, queueing_server: SmtpServer
) -> None:
    overlap(tmp_path, queueing_server, appointments=200, runs=20)


# -- 3. the lock as status shows it --------------------------------------------------------


def test_status_names_the_running_send_due_as_lock_holder_and_a_second_run_leaves_quietly(
    tmp_path: Path, queueing_server: SmtpServer
) -> None:
    handler = queueing(queueing_server)
    config = setup_practice(tmp_path, queueing_server, 5, workers=1)
    handler.answering.clear()
    started = datetime.now(UTC).replace(microsecond=0)
    proc = start_send_due(config)
    wait_for(lambda: len(handler.arrived) == 1)  # mid-run, under the lock

    during = status_json(config)
    second = run_reminder(config, "send-due")
    handler.answering.set()
    assert proc.wait(timeout=30) == 0
    after = status_json(config)

    assert during["lock"]["held"] is True
    assert during["lock"]["pid"] == proc.pid
    since = datetime.fromisoformat(during["lock"]["since"])
    assert started - timedelta(seconds=1) <= since <= datetime.now(UTC)
    assert during["in_doubt"] == []  # `sending` under a live run is in flight, not in doubt
    assert second == (0, "", "")
    assert after["lock"] == {"held": False, "pid": None, "since": None}
    got = deliveries(queueing_server, tmp_path / "outbox")
    assert sorted(r for _, r in got) == sorted(expected_recipients(5))


def test_send_due_exits_75_naming_the_holder_when_a_run_holds_the_lock_past_the_stale_limit(
    tmp_path: Path, queueing_server: SmtpServer
) -> None:
    handler = queueing(queueing_server)
    config = write_config(tmp_path, email_transport="smtp", port=queueing_server.port,
                          workers=1, timeout=30, extra='stale_lock_after = "1s"')  # fmt: skip
    code, out, err = run_reminder(config, "import", str(write_appointments(tmp_path, 6)))
    assert code == 0, err
    handler.answering.clear()
    proc = start_send_due(config)
    wait_for(lambda: len(handler.arrived) == 1)  # mid-run, under the lock
    time.sleep(1.5)

    code, out, err = run_reminder(config, "send-due")

    handler.answering.set()
    assert code == 75
    assert out == ""
    [line] = err.splitlines()
    assert f"(pid {proc.pid})" in line and "stale_lock_after" in line, line
    assert proc.wait(timeout=30) == 0
    got = deliveries(queueing_server, tmp_path / "outbox")
    assert sorted(r for _, r in got) == sorted(expected_recipients(6))


# -- 4. the in-doubt sweep -----------------------------------------------------------------


@pytest.mark.parametrize("server_kept_them", [True, False], ids=["kept", "lost"])
def test_send_due_reports_reminders_a_killed_run_left_in_flight_as_in_doubt_and_never_resends(
    tmp_path: Path, queueing_server: SmtpServer, server_kept_them: bool
) -> None:
    handler = queueing(queueing_server)
    handler.keep_on_hangup = server_kept_them
    config = setup_practice(tmp_path, queueing_server, 6, workers=2)
    db = tmp_path / "reminders.db"
    handler.answering.clear()
    proc = start_send_due(config)
    wait_for(lambda: len(handler.arrived) == 2)  # both workers wait for the server's answer
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    in_flight = set(handler.arrived)
    handler.answering.set()
    left = load_reminders(db)
    assert {i for i, r in left.items() if r.state == "sending"} == in_flight
    before = status_json(config)
    assert sorted(r["id"] for r in before["in_doubt"]) == sorted(in_flight)

    code, out, err = run_reminder(config, "send-due")

    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == len(in_flight), err
    for reminder_id in in_flight:
        recipient = left[reminder_id].recipient
        masked = f"{recipient[:1]}***@{EMAIL_DOMAIN}"
        [line] = [line for line in lines if line.startswith(f"reminder {reminder_id} ")]
        assert f"email to {masked}" in line and "is in doubt" in line, line
        assert f"reminder replay {reminder_id}" in line, line
    got = deliveries(queueing_server, tmp_path / "outbox")
    assert_never_delivered_twice(got, "after the sweep")
    delivered = Counter(i for i, _ in got)
    assert {i for i in in_flight if delivered[i]} == (in_flight if server_kept_them else set())
    assert set(delivered) - in_flight == set(left) - in_flight
    reminders = assert_every_reminder_settled(db, config, got, "after the sweep")
    assert {i for i, r in reminders.items() if r.state == "unknown"} == in_flight

    again = run_reminder(config, "send-due")

    assert again == (0, "", "")
    assert sorted(deliveries(queueing_server, tmp_path / "outbox")) == sorted(got)
    assert load_reminders(db) == reminders
