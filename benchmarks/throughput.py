"""Volume benchmark for reminder-cli (issue 6): `make bench` runs it, `--quick` for a short run.

It drives the real CLI as subprocesses (`python -m reminder_cli ...`) against real files in a
temporary directory under /tmp, and a real SMTP server (aiosmtpd) on 127.0.0.1 in a process of
its own, so that the server's CPU does not share a GIL with `send-due`. Sections:

- smtp:    N due email reminders, the server answering each DATA after D ms, for each worker
           count W: wall time, messages/s, ratio to the ideal N*D/W; every message must arrive
           exactly once (counted at the server) and the journal must show N sent. Plus the
           2,000-reminders-at-128-workers point.
- idle:    `send-due` with nothing due (Twilio configured, so an SDK imported too early shows):
           wall time (median) and peak RSS.
- journal: journal cost per reminder with synchronous=FULL, measured in-process: the journal's
           own work, Journal.record_claim + Journal.record_finish (one transaction each, render
           not included), timed per reminder; plus send-due with the outbox transport end to
           end, per reminder.
- million: `status` and `status --json` on a journal with 1,000,000 finished reminders and
           1,000 due (built with direct SQL in the journal's own schema).
- import:  `import` of a 100,000-row CSV, then again unchanged.
- memory:  peak RSS of `send-due` with 100,000 due reminders (outbox transport).

Wall times are from fork to exit of the CLI process (Python start-up included). Peak RSS is
GNU time's %M for the CLI process alone. Other work on the machine skews every figure: the
JSON records the load average before and after.

Prints one table and writes the same figures as JSON (--json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import multiprocessing
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECTIONS = ("idle", "journal", "smtp", "million", "import", "memory")
ENV = {k: v for k, v in os.environ.items() if k not in ("REMINDER_CONFIG", "REMINDER_DB")}
ENV["NO_COLOR"] = "1"
MB = 1024 * 1024


# -- figures ----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure: a row of the table and an object in the JSON."""

    section: str
    name: str
    value: float | None
    unit: str
    detail: str = ""
    target: str = ""
    met: bool | None = None  # None: no target, or not comparable (--quick, an error)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Sizes of every section (the full run, or --quick)."""

    quick: bool
    n: int
    delay: float  # seconds per message at the SMTP server
    workers: tuple[int, ...]
    burst: int  # reminders for the 128-worker point
    burst_workers: int
    idle_runs: int
    journal_reminders: int
    finished: int  # finished reminders in the "million" journal
    finished_due: int
    status_runs: int
    import_rows: int
    memory_due: int


def comparable(plan: Plan, check: bool) -> bool | None:
    """A target's verdict, or None when the run is too small to compare (--quick)."""
    return None if plan.quick else check


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- running the CLI --------------------------------------------------------------------------


@dataclass
class CliRun:
    wall: float  # seconds, from fork to exit
    rc: int
    max_rss_mb: float  # of this child alone (wait4)
    stdout: str
    stderr: str

    def first_error(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1][:160] if lines else f"exit {self.rc}"


def exit_note(run: CliRun) -> str:
    return f"; exit {run.rc}: {run.first_error()}" if run.rc else ""


GNU_TIME = Path("/usr/bin/time")


def run_cli(config: Path, *args: str, timeout: float = 3600.0) -> CliRun:
    """`python -m reminder_cli --config CONFIG ARGS`, with its wall time and peak RSS.

    The peak RSS comes from /usr/bin/time (GNU), which forks the CLI from its own small
    process: Linux counts the address space a process had before exec in its ru_maxrss, so
    wait4 on a child forked from this (large) benchmark would report our size, not the CLI's.
    """
    command = [sys.executable, "-m", "reminder_cli", "--config", str(config), *args]
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        if GNU_TIME.exists():
            command = [str(GNU_TIME), "-f", "%M", "-o", rss.name, *command]
        started = time.perf_counter()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=ENV,
            start_new_session=True,
        )
        watchdog = threading.Timer(timeout, lambda: os.killpg(proc.pid, 9))
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        lines = rss.read().split()
        max_rss_kb = int(lines[-1]) if lines and lines[-1].isdigit() else usage.ru_maxrss
        out.seek(0)
        err.seek(0)
        return CliRun(
            wall,
            proc.returncode,
            max_rss_kb / 1024,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


CONFIG = """\
[journal]
path = "reminders.db"

[practice]
name = "Benchmark Clinic"
timezone = "America/Chicago"
phone = "(312) 555-0100"

[[rules]]
name = "day-before"
before = "1d"
channels = {channels}

[email]
transport = "{email_transport}"
from = "Benchmark Clinic <reminders@clinic.example>"
host = "127.0.0.1"
port = {port}
timeout = 30

[sms]
{sms}

[outbox]
dir = "outbox"

[delivery]
workers = 8
max_per_recipient_per_day = 0

[quiet_hours]
channels = []
"""
SMS_OUTBOX = 'transport = "outbox"\nfrom_number = "+13125550100"'
SMS_TWILIO = (
    'transport = "twilio"\nfrom_number = "+13125550100"\n'
    f'account_sid = "AC{"0" * 32}"\nauth_token = "{"0" * 32}"'
)


def write_config(
    directory: Path,
    *,
    channels: tuple[str, ...] = ("email",),
    email_transport: str = "outbox",
    port: int = 25,
    sms: str = SMS_OUTBOX,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "reminder.toml"
    path.write_text(
        CONFIG.format(
            channels=json.dumps(list(channels)), email_transport=email_transport, port=port, sms=sms
        )
    )
    return path


def phone(i: int) -> str:
    """A distinct valid US mobile-capable number per i < 1,000,000: +1 312 2xx xxxx."""
    return f"+1 312 {200 + i // 10_000} {i % 10_000:04d}"


def check_phones(rows: int) -> None:
    import phonenumbers

    for exchange in range((rows - 1) // 10_000 + 1):
        number = phonenumbers.parse(phone(exchange * 10_000), "US")
        if not phonenumbers.is_valid_number(number):
            raise SystemExit(f"benchmark bug: {phone(exchange * 10_000)} is not a valid number")


def write_csv(
    path: Path, rows: int, first_start: datetime, step: float, prefix: str, phones: bool
) -> None:
    """Valid rows with distinct ids, emails and (optionally) phones, starting `step` s apart."""
    if phones:
        check_phones(rows)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                *("appointment_id", "name", "email", "phone", "starts_at", "timezone"),
                *("location", "clinician"),
            ]
        )
        for i in range(rows):
            starts = first_start + timedelta(seconds=int(i * step))
            out.writerow(
                [
                    f"{prefix}-{i:07d}",
                    f"Patient {prefix} {i}",
                    f"patient.{prefix.lower()}{i}@patients.example",
                    phone(i) if phones else "",
                    starts.isoformat(timespec="seconds"),
                    "",
                    f"Room {i % 4 + 1}",
                    f"Dr. Clinician {i % 7}",
                ]
            )


def clone_journal(source: Path, target: Path) -> None:
    """A consistent copy of a journal (SQLite's backup API), mode 0600 like the original."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    target.chmod(0o600)


def journal_counts(db: Path) -> tuple[Counter[str], int, int]:
    """(reminders by state, sent dispatch records, distinct reminders among them)."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT state, COUNT(*) FROM reminders GROUP BY state").fetchall()
        states: Counter[str] = Counter(dict(rows))
        sent, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT reminder_id) FROM dispatches WHERE outcome = 'sent'"
        ).fetchone()
    return states, int(sent), int(distinct)


# -- building journals with SQL ---------------------------------------------------------------

STAMP = "'%Y-%m-%dT%H:%M:%S+00:00'"  # iso() of reminder_cli.journal: UTC, to the second


def build_journal(
    db: Path,
    now: datetime,
    *,
    finished: int = 0,
    due: int = 0,
    future: int = 0,
    channels: tuple[str, ...] = ("email", "sms"),
) -> None:
    """A journal in the program's own schema, filled fast with INSERT ... SELECT in one
    transaction: `finished` reminders spread over the past year (mostly sent, some failed,
    expired, cancelled, suppressed, a few unknown) with their dispatch records and runs,
    `due` pending reminders due now (appointments ~20 h ahead, rule "1d"), and `future`
    pending ones not due yet. One appointment per len(channels) reminders."""
    from reminder_cli.journal import Journal

    Journal.open(db).close()  # creates the file (0600) and the schema
    base = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    per = len(channels)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")  # no gigabyte WAL while building
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -100000")
    conn.execute("BEGIN")
    conn.execute("CREATE TEMP TABLE channel (name TEXT)")
    conn.executemany("INSERT INTO temp.channel VALUES (?)", [(c,) for c in channels])
    runs = max(1, min(105_120, finished // 10))  # a year of 5-minute runs at most
    year = 365 * 86400
    conn.execute(
        f"""WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
            INSERT INTO runs (id, kind, pid, started_at, finished_at, outcome, sent)
            SELECT n, 'send-due', 1000 + n,
                strftime({STAMP}, ?, printf('%d seconds', -? + n * ?)),
                strftime({STAMP}, ?, printf('%d seconds', -? + n * ? + 5)), 'ok', 0
            FROM seq""",
        [runs, base, year, year // runs, base, year, year // runs],
    )
    groups = [  # id prefix, appointments, first start (s from now), step (s), first phone
        ("H", finished // per, -year, year // max(1, finished // per), 2_000_000),
        ("D", due // per, 20 * 3600, 1 if due < 10_000 else 0, 2_600_000),
        ("F", future // per, 3 * 86400, 60, 2_700_000),
    ]
    for prefix, count, first, step, phones in groups:
        if count == 0:
            continue
        conn.execute(
            f"""WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
                INSERT INTO appointments (id, name, email, phone, starts_at, timezone, status,
                    location, clinician, sms_ok, sms_problem, source_hash, imported_at, updated_at)
                SELECT ? || n, 'Patient ' || ? || n, 'p.' || lower(?) || n || '@patients.example',
                    '+1312' || (? + n), strftime({STAMP}, ?, printf('%d seconds', ? + n * ?)),
                    'America/Chicago', 'scheduled', 'Room 1', 'Dr. Bench', 1, '',
                    hex(randomblob(16)), strftime({STAMP}, ?), strftime({STAMP}, ?)
                FROM seq""",
            [count, prefix, prefix, prefix, phones, base, first, step, base, base],
        )
        history = prefix == "H"
        state = (
            """CASE WHEN k % 100000 = 50 THEN 'unknown' WHEN k % 1000 < 10 THEN 'failed'
                    WHEN k % 1000 < 20 THEN 'expired' WHEN k % 1000 < 25 THEN 'cancelled'
                    WHEN k % 1000 < 27 THEN 'suppressed' ELSE 'sent' END"""
            if history
            else "'pending'"
        )
        conn.execute(
            f"""INSERT INTO reminders (appointment_id, rule, channel, recipient, starts_at,
                    due_at, expires_at, not_before, state, attempts, reason, provider_id,
                    claimed_at, created_at, updated_at)
                SELECT id, 'day-before', channel, recipient, starts_at, due_at,
                    strftime({STAMP}, starts_at, '-12 hours'), due_at, state,
                    CASE WHEN state IN ('sent', 'failed', 'unknown') THEN 1 ELSE 0 END,
                    CASE WHEN state = 'failed' AND channel = 'email'
                            THEN 'smtp 550: DATA: 5.1.1 no such user'
                        WHEN state = 'failed' THEN 'twilio 21211: invalid To number'
                        WHEN 'expired' THEN 'not sent before its lateness limit'
                        WHEN 'cancelled' THEN 'the appointment was cancelled'
                        WHEN 'suppressed' THEN 'recipient cap: 3 in 24 hours'
                        WHEN 'unknown' THEN 'no answer from the provider: timeout'
                        ELSE '' END,
                    CASE state WHEN 'sent' THEN '250 OK queued as ' || k ELSE NULL END,
                    CASE WHEN state IN ('sent', 'failed', 'unknown')
                        THEN strftime({STAMP}, due_at, '+60 seconds') END,
                    strftime({STAMP}, due_at, '-1 day'),
                    CASE WHEN state = 'pending' THEN strftime({STAMP}, due_at, '-1 day')
                        ELSE strftime({STAMP}, due_at, '+61 seconds') END
                FROM (SELECT *, {state} AS state FROM (
                      SELECT a.id, c.name AS channel,
                          CASE c.name WHEN 'email' THEN a.email ELSE a.phone END AS recipient,
                          a.starts_at, strftime({STAMP}, a.starts_at, '-1 day') AS due_at,
                          CAST(substr(a.id, 2) AS INTEGER) AS k
                      FROM appointments a CROSS JOIN temp.channel c
                      WHERE a.id >= ? AND a.id < ?)
                  ORDER BY k, channel)""",
            [prefix, chr(ord(prefix) + 1)],
        )
    last = conn.execute("SELECT COALESCE(MAX(id), 1) FROM reminders").fetchone()[0]
    conn.execute(
        """INSERT INTO dispatches (reminder_id, run_id, attempt, channel, recipient, claimed_at,
               finished_at, outcome, provider_id, error_code, error_message)
           SELECT id, 1 + ((id - 1) * ?) / ?, 1, channel, recipient, claimed_at,
               strftime('%Y-%m-%dT%H:%M:%S+00:00', claimed_at, '+1 seconds'),
               CASE state WHEN 'sent' THEN 'sent' WHEN 'failed' THEN 'permanent'
                   ELSE 'unknown' END,
               provider_id,
               CASE WHEN state = 'unknown' THEN 'timeout' WHEN state = 'sent' THEN NULL
                   WHEN channel = 'email' THEN 'smtp 550' ELSE 'twilio 21211' END,
               CASE WHEN state = 'unknown' THEN 'read timed out' WHEN state = 'sent' THEN NULL
                   WHEN channel = 'email' THEN 'DATA: 5.1.1 no such user'
                   ELSE 'invalid To number' END
           FROM reminders WHERE state IN ('sent', 'failed', 'unknown') ORDER BY id""",
        [runs, last],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


# -- the SMTP server, in a process of its own -------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CountingHandler:
    """aiosmtpd handler: answers DATA after `delay` s, counts messages per recipient."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.guard = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.guard:
            self.per_recipient: Counter[str] = Counter()
            self.messages = 0
            self.active = self.max_active = 0
            self.first = self.last = 0.0

    def stats(self) -> dict[str, Any]:
        with self.guard:
            return {
                "messages": self.messages,
                "distinct": len(self.per_recipient),
                "duplicates": sum(c - 1 for c in self.per_recipient.values() if c > 1),
                "max_concurrent": self.max_active,
                "span_s": self.last - self.first if self.messages else 0.0,
            }

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        started = time.monotonic()
        self.active += 1  # the event loop's thread only
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        with self.guard:
            self.first = self.first or started
            self.last = time.monotonic()
            self.messages += 1
            self.per_recipient.update(envelope.rcpt_tos)
        return "250 OK queued"


def serve_smtp(delay: float, pipe: Connection) -> None:
    """The server process: start aiosmtpd, send the port, then answer stats/reset/stop."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    handler = CountingHandler(delay)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=30)
    controller.start()
    pipe.send(port)
    try:
        while True:
            command = pipe.recv()
            if command == "stats":
                pipe.send(handler.stats())
            elif command == "reset":
                handler.reset()
                pipe.send(None)
            else:
                break
    finally:
        controller.stop()


class SmtpServer:
    def __init__(self, delay: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=serve_smtp, args=(delay, child), daemon=True)
        self.process.start()
        if not self.pipe.poll(60):
            raise RuntimeError("the SMTP server process did not start")
        self.port: int = self.pipe.recv()

    def ask(self, command: str) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def close(self) -> None:
        with suppress(OSError):
            self.pipe.send("stop")
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


@contextmanager
def smtp_server(delay: float) -> Iterator[SmtpServer]:
    server = SmtpServer(delay)
    try:
        yield server
    finally:
        server.close()


# -- sections ---------------------------------------------------------------------------------


def imported_journal(work: Path, name: str, count: int, port: int) -> Path:
    """A directory with an SMTP config and `count` due email reminders, planned by `import`."""
    directory = work / name
    config = write_config(directory, email_transport="smtp", port=port)
    csv_path = directory / "due.csv"
    start = datetime.now(UTC) + timedelta(hours=20)  # rule "1d": due 4 h ago, expires in 8 h
    write_csv(csv_path, count, start, 3600 / max(count, 1), name.upper(), phones=False)
    run = run_cli(config, "import", str(csv_path))
    states, _, _ = journal_counts(directory / "reminders.db")
    if run.rc != 0 or states["pending"] != count:
        raise RuntimeError(f"import for {name} failed: {run.first_error()} ({dict(states)})")
    return directory


def smtp_point(plan: Plan, server: SmtpServer, template: Path, work: Path, workers: int) -> Figure:
    """One send-due through SMTP with `workers`, on a fresh copy of the template journal."""
    count = journal_counts(template / "reminders.db")[0]["pending"]
    directory = work / f"{template.name}-w{workers}"
    config = write_config(directory, email_transport="smtp", port=server.port)
    clone_journal(template / "reminders.db", directory / "reminders.db")
    server.ask("reset")
    log(f"smtp: {count} reminders, {workers} workers, {plan.delay * 1000:g} ms per message")
    run = run_cli(config, "send-due", "--workers", str(workers), "--time-budget", "100000")
    seen = server.ask("stats")
    states, sent_records, distinct = journal_counts(directory / "reminders.db")
    ideal = count * plan.delay / workers
    verified = (
        seen["messages"] == count
        and seen["distinct"] == count
        and seen["duplicates"] == 0
        and states["sent"] == count
        and sent_records == count == distinct
    )
    rate = count / run.wall
    detail = (
        f"{rate:,.0f} msg/s; {run.wall / ideal:.2f}x ideal {ideal:.2f} s; server got "
        f"{seen['messages']:,} ({seen['duplicates']} dup) over {seen['span_s']:.2f} s, "
        f"{seen['max_concurrent']} at once; journal sent {states['sent']:,}; "
        + ("verified" if verified else "NOT VERIFIED")
    )
    detail += exit_note(run)
    extra = {
        "reminders": count,
        "workers": workers,
        "delay_ms": plan.delay * 1000,
        "messages_per_s": rate,
        "ideal_s": ideal,
        "ratio_to_ideal": run.wall / ideal,
        "server": seen,
        "journal_states": dict(states),
        "sent_dispatch_records": sent_records,
        "verified": verified,
        "exit_code": run.rc,
        "peak_rss_mb": run.max_rss_mb,
    }
    name = f"send-due {count:,} x {plan.delay * 1000:g} ms, {workers} workers"
    return Figure("smtp", name, run.wall, "s", detail, extra=extra)


def section_smtp(plan: Plan, work: Path) -> list[Figure]:
    figures = []
    with smtp_server(plan.delay) as server:
        template = imported_journal(work, "smtp", plan.n, server.port)
        for workers in plan.workers:
            figure = smtp_point(plan, server, template, work, workers)
            if workers == 32:
                figure.target = "<= 1.3x ideal"
                figure.met = comparable(
                    plan, figure.extra["ratio_to_ideal"] <= 1.3 and figure.extra["verified"]
                )
            figures.append(figure)
        template = imported_journal(work, "burst", plan.burst, server.port)
        figure = smtp_point(plan, server, template, work, plan.burst_workers)
        figure.target = ">= 900 msg/s, all journaled"
        figure.met = comparable(
            plan, figure.extra["messages_per_s"] >= 900 and figure.extra["verified"]
        )
        figures.append(figure)
    return figures


def idle_config(work: Path) -> Path:
    """A journal with history and future work but nothing due; Twilio configured for SMS, so
    an SDK imported before a message needs it shows in the start-up time and memory."""
    directory = work / "idle"
    both = ("email", "sms")
    config = write_config(directory, channels=both, email_transport="smtp", sms=SMS_TWILIO)
    build_journal(directory / "reminders.db", datetime.now(UTC), finished=2_000, future=2_000)
    probe = run_cli(config, "send-due")
    if probe.rc != 0:  # the Twilio settings were refused: measure with the outbox instead
        log(f"idle: Twilio config refused ({probe.first_error()}); using the SMS outbox")
        config = write_config(directory, channels=both, email_transport="smtp")
    return config


def section_idle(plan: Plan, work: Path) -> list[Figure]:
    config = idle_config(work)
    runs = [run_cli(config, "send-due") for _ in range(plan.idle_runs)]
    bad = [r for r in runs if r.rc != 0]
    walls = [r.wall for r in runs]
    rss = max(r.max_rss_mb for r in runs)
    wall = statistics.median(walls)
    note = f"; {len(bad)} run(s) failed: {bad[0].first_error()}" if bad else ""
    return [
        Figure(
            "idle",
            "send-due, nothing due: wall (median)",
            wall,
            "s",
            f"median of {len(runs)}; min {min(walls):.3f}, max {max(walls):.3f}{note}",
            "<= 0.3 s",
            wall <= 0.3 and not bad,
            {"walls": walls},
        ),
        Figure(
            "idle",
            "send-due, nothing due: peak RSS",
            rss,
            "MB",
            "max over the runs (GNU time %M)",
            "<= 50 MB",
            rss <= 50 and not bad,
        ),
    ]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def reference_commit_ms(directory: Path, count: int = 300) -> float:
    """One durable commit (WAL, synchronous=FULL) of a one-row insert, median ms, same disk."""
    with closing(sqlite3.connect(directory / "commit.db", isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (x INTEGER)")
        times = []
        for i in range(count):
            started = time.perf_counter()
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t VALUES (?)", [i])
            conn.execute("COMMIT")
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def section_journal(plan: Plan, work: Path, idle_wall: float | None) -> list[Figure]:
    """Journal cost per reminder, in-process: record_claim + record_finish as the dispatcher
    calls them (one transaction each), timed per reminder on a journal opened by the program."""
    from reminder_cli.journal import Journal
    from reminder_cli.models import State

    directory = work / "journal"
    directory.mkdir()
    count = plan.journal_reminders
    now = datetime.now(UTC)
    build_journal(directory / "reminders.db", now, due=count, channels=("email",))
    journal = Journal.open(directory / "reminders.db")
    synchronous = journal.db.execute("PRAGMA synchronous").fetchone()[0]
    run_id = journal.record_run_start("benchmark", now)
    claims, finishes = [], []
    for row in journal.list_due(now, count):
        started = time.perf_counter()
        claimed = journal.record_claim(row.id, run_id, now)
        middle = time.perf_counter()
        if claimed is None:
            raise RuntimeError(f"reminder {row.id} could not be claimed")
        journal.record_finish(claimed, State.SENT, now, provider_id=f"bench-{row.id}")
        claims.append(middle - started)
        finishes.append(time.perf_counter() - middle)
    journal.record_run_end(run_id, "ok", "", {"sent": len(claims)}, now)
    journal.close()
    totals = [(a + b) * 1000 for a, b in zip(claims, finishes, strict=True)]
    median, p99 = statistics.median(totals), percentile(totals, 0.99)
    sync_name = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(synchronous, str(synchronous))
    method = (
        f"in-process record_claim + record_finish, {len(totals):,} reminders, "
        f"synchronous={sync_name}; claim {statistics.median(claims) * 1000:.3f} ms, "
        f"finish {statistics.median(finishes) * 1000:.3f} ms (medians)"
    )
    commit = reference_commit_ms(directory)
    figures = [
        Figure(
            "journal",
            "journal cost per reminder: median",
            median,
            "ms",
            method,
            "<= 1 ms",
            median <= 1.0 and synchronous == 2,
            {"synchronous": sync_name},
        ),
        Figure("journal", "journal cost per reminder: p99", p99, "ms", method),
        Figure(
            "journal",
            "reference: one durable commit (WAL, FULL)",
            commit,
            "ms",
            "one-row INSERT + COMMIT on the same disk, median of 300",
        ),
    ]
    # End to end with the outbox transport: what a reminder costs a real send-due.
    e2e = work / "journal-outbox"
    config = write_config(e2e)
    build_journal(e2e / "reminders.db", now, due=count, channels=("email",))
    run = run_cli(config, "send-due", "--time-budget", "100000")
    states, _, _ = journal_counts(e2e / "reminders.db")
    per = (run.wall - (idle_wall or 0.0)) / count * 1000
    figures.append(
        Figure(
            "journal",
            "send-due outbox, whole run per reminder",
            per,
            "ms",
            f"(wall {run.wall:.2f} s - idle start-up {idle_wall or 0:.2f} s) / {count:,}; "
            f"8 workers; includes render + outbox file fsync; sent {states['sent']:,}"
            + exit_note(run),
            extra={"wall_s": run.wall, "sent": states["sent"]},
        )
    )
    return figures


def section_million(plan: Plan, work: Path) -> list[Figure]:
    directory = work / "million"
    config = write_config(directory, channels=("email", "sms"))
    db = directory / "reminders.db"
    log(f"million: building a journal with {plan.finished:,} finished + {plan.finished_due:,} due")
    started = time.perf_counter()
    build_journal(db, datetime.now(UTC), finished=plan.finished, due=plan.finished_due)
    built = time.perf_counter() - started
    states, _, _ = journal_counts(db)
    size = db.stat().st_size / MB
    about = (
        f"{sum(states.values()):,} reminders ({states['pending']:,} due), "
        f"{size:,.0f} MB file, built in {built:.0f} s"
    )
    figures = []
    for args in (("status",), ("status", "--json")):
        runs = [run_cli(config, *args) for _ in range(plan.status_runs)]
        wall = statistics.median(r.wall for r in runs)
        bad = [r for r in runs if r.rc not in (0, 1)]
        note = f"; failed: {bad[0].first_error()}" if bad else ""
        if args[-1] == "--json" and not bad:
            due_now = json.loads(runs[0].stdout).get("due_now")
            note += f"; due_now={due_now}"
        figures.append(
            Figure(
                "million",
                f"{' '.join(args)} (median of {len(runs)})",
                wall,
                "s",
                about + note,
                "<= 0.5 s",
                comparable(plan, wall <= 0.5 and not bad),
                {"walls": [r.wall for r in runs], "peak_rss_mb": max(r.max_rss_mb for r in runs)},
            )
        )
    run = run_cli(config, "send-due", "--time-budget", "100000")
    states, _, _ = journal_counts(db)
    figures.append(
        Figure(
            "million",
            f"send-due {plan.finished_due:,} due (outbox)",
            run.wall,
            "s",
            f"on the same journal; pending left {states['pending']}; peak RSS "
            f"{run.max_rss_mb:.0f} MB" + exit_note(run),
            extra={"peak_rss_mb": run.max_rss_mb},
        )
    )
    runs = [run_cli(config, "send-due") for _ in range(plan.status_runs)]
    wall = statistics.median(r.wall for r in runs)
    figures.append(
        Figure(
            "million",
            f"send-due, nothing due (median of {len(runs)})",
            wall,
            "s",
            f"on the same journal; peak RSS {max(r.max_rss_mb for r in runs):.0f} MB",
            "<= 0.3 s",
            comparable(plan, wall <= 0.3 and all(r.rc == 0 for r in runs)),
        )
    )
    return figures


def section_import(plan: Plan, work: Path) -> list[Figure]:
    directory = work / "import"
    config = write_config(directory, channels=("email", "sms"))
    csv_path = directory / "appointments.csv"
    rows = plan.import_rows
    start = datetime.now(UTC) + timedelta(days=2)
    write_csv(csv_path, rows, start, 28 * 86400 / rows, "IMP", phones=True)
    log(f"import: {rows:,} rows")
    first = run_cli(config, "import", str(csv_path))
    states, _, _ = journal_counts(directory / "reminders.db")
    second = run_cli(config, "import", str(csv_path))
    again, _, _ = journal_counts(directory / "reminders.db")
    unchanged = again == states

    return [
        Figure(
            "import",
            f"import {rows:,}-row CSV (new journal)",
            first.wall,
            "s",
            f"{states['pending']:,} reminders planned; peak RSS {first.max_rss_mb:.0f} MB"
            + exit_note(first),
            extra={"peak_rss_mb": first.max_rss_mb, "states": dict(states)},
        ),
        Figure(
            "import",
            f"re-import of the unchanged {rows:,}-row CSV",
            second.wall,
            "s",
            f"journal {'unchanged' if unchanged else 'CHANGED'}; peak RSS "
            f"{second.max_rss_mb:.0f} MB" + exit_note(second),
            "<= 10 s",
            comparable(plan, second.wall <= 10 and unchanged and second.rc == 0),
            {"peak_rss_mb": second.max_rss_mb},
        ),
    ]


def section_memory(plan: Plan, work: Path) -> list[Figure]:
    directory = work / "memory"
    config = write_config(directory)
    count = plan.memory_due
    build_journal(directory / "reminders.db", datetime.now(UTC), due=count, channels=("email",))
    log(f"memory: send-due with {count:,} due (outbox)")
    run = run_cli(config, "send-due", "--time-budget", "100000")
    states, _, _ = journal_counts(directory / "reminders.db")
    return [
        Figure(
            "memory",
            f"send-due {count:,} due (outbox): peak RSS",
            run.max_rss_mb,
            "MB",
            f"wall {run.wall:.1f} s ({count / run.wall:,.0f}/s); sent {states['sent']:,}"
            + exit_note(run),
            "<= 150 MB",
            comparable(plan, run.max_rss_mb <= 150 and states["sent"] == count),
            {"wall_s": run.wall, "sent": states["sent"]},
        ),
    ]


# -- main -------------------------------------------------------------------------------------


def make_plan(args: argparse.Namespace) -> Plan:
    quick = bool(args.quick)
    workers = tuple(int(w) for w in str(args.workers).split(",") if w.strip())
    return Plan(
        quick=quick,
        n=args.n if args.n is not None else (100 if quick else 10_000),
        delay=args.delay_ms / 1000,
        workers=workers,
        burst=300 if quick else 2_000,
        burst_workers=128,
        idle_runs=5 if quick else 10,
        journal_reminders=300 if quick else 2_000,
        finished=20_000 if quick else 1_000_000,
        finished_due=200 if quick else 1_000,
        status_runs=3 if quick else 5,
        import_rows=2_000 if quick else 100_000,
        memory_due=2_000 if quick else 100_000,
    )


def guarded(section: str, action: Callable[[], list[Figure]]) -> list[Figure]:
    """Run one section; a failure becomes a row saying so, and the other sections still run."""
    started = time.perf_counter()
    try:
        figures = action()
    except Exception as exc:
        traceback.print_exc()
        return [Figure(section, "section failed", None, "", f"{type(exc).__name__}: {exc}")]
    log(f"{section}: done in {time.perf_counter() - started:.1f} s")
    return figures


def print_table(figures: list[Figure], plan: Plan) -> None:
    from rich.console import Console
    from rich.table import Table

    title = "reminder-cli throughput"
    if plan.quick:
        title += " (--quick: sizes too small to judge most targets)"
    table = Table(title=title, show_lines=False)
    for column in ("section", "measure", "value", "target", "met", "detail"):
        table.add_column(column, overflow="fold", no_wrap=column in ("value", "met"))
    for f in figures:
        value = "-" if f.value is None else f"{f.value:,.3f} {f.unit}"
        met = {True: "yes", False: "NO", None: ""}[f.met]
        table.add_row(f.section, f.name, value, f.target, met, f.detail)
    Console(width=max(160, Console().width)).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, help="due reminders for the SMTP runs (default 10000; 100 with --quick)"
    )
    parser.add_argument("--delay-ms", type=float, default=50.0, help="SMTP delay per message")
    parser.add_argument("--workers", default="1,8,32,128", help="worker counts, comma-separated")
    parser.add_argument("--quick", action="store_true", help="small sizes: every section, < 1 min")
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--skip-million", action="store_true", help="skip the 1M-row journal")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run (a,b,...)")
    args = parser.parse_args(argv)
    plan = make_plan(args)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if args.skip_million and "million" in chosen:
        chosen.remove("million")
    figures: list[Figure] = []
    started = time.perf_counter()
    load_before = os.getloadavg()  # other work on the machine skews every figure
    with tempfile.TemporaryDirectory(prefix="reminder-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        idle: list[float] = []  # the idle start-up time, once measured
        actions: dict[str, Callable[[], list[Figure]]] = {
            "idle": lambda: section_idle(plan, work),
            "journal": lambda: section_journal(plan, work, idle[0] if idle else None),
            "smtp": lambda: section_smtp(plan, work),
            "million": lambda: section_million(plan, work),
            "import": lambda: section_import(plan, work),
            "memory": lambda: section_memory(plan, work),
        }
        for section in SECTIONS:
            if section not in chosen:
                continue
            log(f"{section}: start")
            got = guarded(section, actions[section])
            if section == "idle":
                idle.extend(f.value for f in got if f.unit == "s" and f.value is not None)
            figures.extend(got)
    print_table(figures, plan)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "total_s": time.perf_counter() - started,
        "plan": asdict(plan),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "tmp": "/tmp",
        "rss_from": "/usr/bin/time %M" if GNU_TIME.exists() else "wait4 ru_maxrss (upper bound)",
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(
        json.dumps({"meta": meta, "figures": [asdict(f) for f in figures]}, indent=2) + "\n"
    )
    print(f"figures written to {args.json_out}", file=sys.stderr)
    return 1 if any(f.value is None for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
