"""Pacing: a token bucket shared by the workers keeps a channel under its configured rate."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reminder_cli.pacing import THROTTLED_RATE, TokenBucket
from tests.conftest import SmtpServer, run_reminder, write_config

ONE_HOUR_RULE = """\
[[rules]]
name = "soon"
before = "1h"
channels = ["email"]
"""


def test_a_bucket_without_a_rate_never_waits() -> None:
    bucket = TokenBucket(0)
    started = time.monotonic()
    for _ in range(1000):
        bucket.take()
    assert time.monotonic() - started < 0.5


def test_a_bucket_shared_by_threads_spaces_takes_by_its_rate() -> None:
    bucket = TokenBucket(50)  # 40 takes: the first at once, then 39 x 20 ms = 0.78 s at least
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [bucket.take() for _ in range(5)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 0.75


def test_a_429_halves_the_rate_or_sets_one() -> None:
    limited, unlimited = TokenBucket(20), TokenBucket(0)
    limited.slow_down()
    unlimited.slow_down()
    assert (limited.rate, unlimited.rate) == (10, THROTTLED_RATE)


def test_send_due_with_max_per_second_20_spreads_100_emails_over_at_least_4_5_seconds(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    starts = (datetime.now(UTC) + timedelta(minutes=50)).replace(microsecond=0)
    rows = ["appointment_id,name,email,starts_at"]
    rows += [f"P-{i},Patient {i},p{i}@patients.example,{starts.isoformat()}" for i in range(100)]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    extra = "max_per_recipient_per_day = 0\n[quiet_hours]\nchannels = []\n"
    config = write_config(
        tmp_path,
        rules=ONE_HOUR_RULE,
        email_transport="smtp",
        port=smtp_server.port,
        workers=16,
        extra=extra,
    )
    text = config.read_text().replace("\nport = ", "\nmax_per_second = 20\nport = ", 1)
    config.write_text(text)
    code, _, err = run_reminder(config, "import", str(tmp_path / "a.csv"))
    assert code == 0, err
    arrivals: list[float] = []
    original = smtp_server.handler.handle_DATA

    async def timed(server: object, session: object, envelope: object) -> str:
        arrivals.append(time.monotonic())
        return await original(server, session, envelope)

    smtp_server.handler.handle_DATA = timed  # type: ignore[method-assign]
    code, _, err = run_reminder(config, "send-due")
    assert code == 0, err
    assert len(smtp_server.received) == 100
    assert max(arrivals) - min(arrivals) >= 4.5
