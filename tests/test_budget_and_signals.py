"""The time budget and graceful stops (SIGTERM, SIGINT), in real time against a slow real SMTP
server (aiosmtpd on 127.0.0.1 that waits a second before answering each DATA).

The clock cannot be frozen here (the budget is measured in real seconds, and a subprocess
cannot share freezegun), so the appointments are placed relative to the real now: they start
in 20 hours (UTC), so their "1d" email reminders fell due 4 hours ago and stay useful for 8
more hours. Email is not subject to quiet hours by default.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import SmtpServer, invoke, run_reminder, wait_for, write_config
from tests.rails_support import (
    appt,
    dispatches,
    emails_sent,
    reminders,
    runs,
    status_json,
    write_csv,
)

RULES = '[[rules]]\nname = "day-before"\nbefore = "1d"\nchannels = ["email"]\n'
COUNT = 6
SEND_SECONDS = 1.0  # the server's delay before it answers DATA
TIMEOUT = 2.0  # [email] timeout: the longest one send may take


def practice(tmp_path: Path, server: SmtpServer, *, workers: int) -> Path:
    config = write_config(
        tmp_path,
        rules=RULES,
        email_transport="smtp",
        port=server.port,
        workers=workers,
        timeout=TIMEOUT,
    )
    starts = (datetime.now(UTC) + timedelta(hours=20)).replace(microsecond=0).isoformat()
    rows = [appt(f"B{i}", starts, "Etc/UTC", email=f"b{i}@patients.example") for i in range(COUNT)]
    result = invoke(config, "import", str(write_csv(tmp_path / "a.csv", rows)))
    assert result.exit_code == 0, result.output
    server.handler.delay = SEND_SECONDS
    return config


def test_time_budget_stops_claiming_leaves_the_rest_pending_and_the_next_run_finishes(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = practice(tmp_path, smtp_server, workers=1)
    db = tmp_path / "reminders.db"

    started = time.monotonic()
    result = invoke(config, "send-due", "--time-budget", "3")
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert took < 3 + TIMEOUT, took

    counts = Counter(r["state"] for r in reminders(db))
    # Each send takes at least a second, and no new one starts unless it fits in 3 s.
    assert 1 <= counts["sent"] <= 2, counts
    assert counts == {"sent": counts["sent"], "pending": COUNT - counts["sent"]}
    assert len(smtp_server.received) == counts["sent"]
    assert all(d["outcome"] == "sent" for d in dispatches(db))
    run = runs(db)[-1]
    assert (run["outcome"], run["reason"], run["sent"]) == (
        "stopped_early",
        "time budget of 3 s reached; the rest waits for the next run",
        counts["sent"],
    )
    last = status_json(config)["last_run"]
    assert (last["outcome"], last["reason"]) == (run["outcome"], run["reason"])

    result = invoke(config, "send-due", "--workers", "4")
    assert result.exit_code == 0, result.output
    assert Counter(r["state"] for r in reminders(db)) == {"sent": COUNT}
    assert sorted(to for _, to in emails_sent(smtp_server)) == sorted(
        f"b{i}@patients.example" for i in range(COUNT)
    )
    assert runs(db)[-1]["outcome"] == "ok"


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["SIGTERM", "SIGINT", "SIGHUP"]
)
def test_a_signal_during_a_run_stops_claiming_finishes_in_flight_sends_and_records_why(
    tmp_path: Path, smtp_server: SmtpServer, signum: int
) -> None:
    config = practice(tmp_path, smtp_server, workers=1)
    db = tmp_path / "reminders.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "reminder_cli", "--config", str(config), "send-due"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        wait_for(lambda: len(smtp_server.received) >= 1, timeout=20)
        proc.send_signal(signum)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # It lets the one send in flight finish (at most one server delay, plus the pump's
    # half-second poll), then exits.
    assert time.monotonic() - signalled < SEND_SECONDS + 2.0
    assert proc.returncode == 0, err
    assert (out, err) == ("", "")

    rows = reminders(db)
    counts = Counter(r["state"] for r in rows)
    assert counts["sending"] == 0
    assert counts["sent"] < COUNT, "the signal came too late to test anything"
    assert counts == {"sent": counts["sent"], "pending": COUNT - counts["sent"]}
    assert all(d["outcome"] == "sent" for d in dispatches(db))
    sent_ids = sorted(r["id"] for r in rows if r["state"] == "sent")
    assert sorted(i for i, _ in emails_sent(smtp_server)) == sent_ids
    run = runs(db)[-1]
    assert (run["outcome"], run["reason"], run["sent"]) == (
        "stopped_early",
        "stopped by a signal",
        counts["sent"],
    )
    assert status_json(config)["in_doubt"] == []

    smtp_server.handler.delay = 0
    code, out, err = run_reminder(config, "send-due")
    assert code == 0, err
    assert Counter(r["state"] for r in reminders(db)) == {"sent": COUNT}
    got = Counter(i for i, _ in emails_sent(smtp_server))
    assert sorted(got) == sorted(r["id"] for r in reminders(db))
    assert set(got.values()) == {1}  # nobody got one twice


def test_a_run_that_sent_everything_is_not_recorded_as_stopped_by_the_time_budget(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = write_config(
        tmp_path,
        rules=RULES,
        email_transport="smtp",
        port=smtp_server.port,
        workers=1,
        timeout=TIMEOUT,
    )
    starts = (datetime.now(UTC) + timedelta(hours=20)).replace(microsecond=0).isoformat()
    path = write_csv(tmp_path / "a.csv", [appt("ONE", starts, "Etc/UTC", email="one@x.example")])
    assert invoke(config, "import", str(path)).exit_code == 0
    smtp_server.handler.delay = 0.3
    # The one send takes 0.3 s; after it, 0.3 s + 0.3 s no longer fits in 0.5 s, but there is
    # nothing left to claim.
    result = invoke(config, "send-due", "--time-budget", "0.5")
    assert result.exit_code == 0, result.output
    assert Counter(r["state"] for r in reminders(tmp_path / "reminders.db")) == {"sent": 1}
    run = runs(tmp_path / "reminders.db")[-1]
    assert (run["outcome"], run["reason"]) == ("ok", "")
