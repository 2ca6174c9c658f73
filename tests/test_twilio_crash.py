"""Crash safety of `send-due` with SMS through Twilio: the foundation's crash test (see
test_crash.py) repeated against the fake Twilio of test_twilio_cli.py, with real processes.

The fake Twilio keeps each message as soon as its request has arrived and answers 0.1-0.3 s
later, as a slow provider does; a client killed while it waits therefore leaves a message
Twilio has, which a blind resend would duplicate. Each appointment has its own phone number,
so counting the POSTs per `To` number counts the deliveries per reminder.

The next run sweeps what a killed run left `sending` and asks Twilio's message list: a
message Twilio has is settled as `sent` with its SID; one it has not stays `unknown`, because
the claim is seconds old (younger than the 5 minutes after which it would go out again).

The clock cannot be frozen in a subprocess, so appointments are placed around the real time
(admin_support.due_now_rows): due 4 hours ago, useful for 8 more, far from quiet hours.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.admin_support import due_now_rows, start_reminder, write_csv
from tests.conftest import run_reminder
from tests.test_twilio_cli import (
    SMS_ONLY,
    FakeTwilio,
    fake_twilio,
    fake_twilio_server,
    json_response,
    loopback_only,
    twilio_config,
    unavailable,
)

SEED = int(os.environ.get("REMINDER_CRASH_SEED", "20270111"))


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[HTTPServer]:
    with fake_twilio_server() as server:
        yield server


@pytest.fixture
def twilio(twilio_server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    loopback_only(monkeypatch)  # the subprocesses inherit this environment
    with fake_twilio(twilio_server) as fake:
        yield fake


def phone_of(i: int) -> str:
    """+1 312 2xx xxxx, one per appointment: valid US numbers that can take SMS."""
    number = f"+13122{i // 10000:02d}{i % 10000:04d}"
    assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number
    return number


def setup_practice(tmp_path: Path, twilio: FakeTwilio, count: int, workers: int) -> Path:
    config = twilio_config(tmp_path, twilio.base_url, workers=workers, timeout=5, rules=SMS_ONLY)
    people = [(f"TC-{i:04d}", f"Patient {i}", "", phone_of(i)) for i in range(count)]
    csv_path = write_csv(tmp_path / "appointments.csv", due_now_rows(people))
    code, out, err = run_reminder(config, "import", str(csv_path))
    assert code == 0, out + err
    reminders = load_reminders(config)
    assert sorted(r["recipient"] for r in reminders.values()) == [p[3] for p in people]
    assert {r["state"] for r in reminders.values()} == {"pending"}
    return config


def query(config: Path, sql: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(config.parent / "reminders.db")) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql)]


def load_reminders(config: Path) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in query(config, "SELECT * FROM reminders")}


def until(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.002)


def slow_accept(rng: random.Random, low: float, high: float) -> Any:
    """Keep the message at once; answer 201 after low..high seconds."""
    guard = threading.Lock()

    def answer(fake: FakeTwilio, form: dict[str, str]) -> Response:
        kept = fake.keep(form)
        with guard:
            pause = rng.uniform(low, high)
        time.sleep(pause)
        return json_response({"sid": kept.sid, "status": "queued"}, 201)

    return answer


def assert_never_posted_twice(twilio: FakeTwilio, context: str) -> None:
    twice = [to for to, n in Counter(f["To"] for f in twilio.posts).items() if n > 1]
    assert twice == [], f"Twilio got these numbers twice: {twice}; {context}"


def wait_until_twilio_is_idle(twilio: FakeTwilio) -> None:
    """Let a request a killed client had fully sent reach the fake, then let it finish."""
    time.sleep(0.2)
    until(lambda: twilio.active == 0, 5)
    assert twilio.active == 0


def assert_every_reminder_settled(config: Path, twilio: FakeTwilio, context: str) -> None:
    """Sent with the SID Twilio gave that number's one message, or in doubt and Twilio does
    not have it (the last run asked); one claim each; status agrees."""
    reminders = load_reminders(config)
    assert_never_posted_twice(twilio, context)
    assert {r["state"] for r in reminders.values()} <= {"sent", "unknown"}, context
    sid_of = {k.to: k.sid for k in twilio.kept}
    for rid, r in reminders.items():
        if r["state"] == "sent":
            assert r["provider_id"] == sid_of.get(r["recipient"]), f"{rid}; {context}"
        else:
            assert r["recipient"] not in sid_of, f"{rid}: Twilio has it, still unknown; {context}"
    dispatches = query(config, "SELECT * FROM dispatches")
    assert Counter(d["reminder_id"] for d in dispatches) == Counter(list(reminders)), context
    assert {d["reminder_id"]: d["outcome"] for d in dispatches} == {
        i: r["state"] for i, r in reminders.items()
    }, context
    assert {d["reminder_id"]: d["provider_id"] for d in dispatches} == {
        i: r["provider_id"] for i, r in reminders.items()
    }, context
    code, out, err = run_reminder(config, "status", "--json")
    assert code == 0, err
    status = json.loads(out)
    unknown = sorted(i for i, r in reminders.items() if r["state"] == "unknown")
    assert status["lock"]["held"] is False
    assert sorted(r["id"] for r in status["in_doubt"]) == unknown, context
    assert status["counts"]["sent"] == len(reminders) - len(unknown)


def kill_at_a_random_moment(
    config: Path, twilio: FakeTwilio, rng: random.Random, workers: int
) -> tuple[str, int | None, str]:
    """Start send-due and SIGKILL it a random time after the start, or a random part of an
    answer after Twilio got a random number of further messages."""
    before = len(twilio.posts)
    proc = start_reminder(config, "send-due")
    if rng.random() < 0.5:
        pause = rng.uniform(0.0, 1.0)
        until(lambda: proc.poll() is not None, pause)
        how = f"kill after {pause:.3f} s"
    else:
        more, extra = rng.randint(1, 2 * workers), rng.uniform(0.0, 0.3)
        until(lambda: proc.poll() is not None or len(twilio.posts) >= before + more, 10)
        time.sleep(extra)
        how = f"kill {extra:.3f} s after {more} more POST(s)"
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    return how, None if proc.returncode == -signal.SIGKILL else proc.returncode, err


def crash_many_times(
    tmp_path: Path, twilio: FakeTwilio, *, appointments: int, kills: int, workers: int, seed: int
) -> None:
    print(f"seed {seed} (set REMINDER_CRASH_SEED to repeat)")
    rng = random.Random(seed)
    twilio.default = slow_accept(random.Random(seed + 1), 0.1, 0.3)
    config = setup_practice(tmp_path, twilio, appointments, workers)
    log: list[str] = []
    for k in range(kills):
        how, finished, err = kill_at_a_random_moment(config, twilio, rng, workers)
        log.append(f"#{k}: {how}" + ("" if finished is None else f"; it exited {finished}"))
        context = f"seed {seed}, workers {workers}, runs: {'; '.join(log)}"
        assert finished in (None, 0, 1), f"{err}; {context}"
        assert_never_posted_twice(twilio, context)
        reminders = load_reminders(config)
        sending = {i for i, r in reminders.items() if r["state"] == "sending"}
        assert len(sending) <= workers, f"more than the in-flight left sending; {context}"
        assert {r["state"] for r in reminders.values()} <= {"pending", "sending", "sent",
                                                             "unknown"}, context  # fmt: skip
    context = f"seed {seed}, workers {workers}, runs: {'; '.join(log)}"
    wait_until_twilio_is_idle(twilio)

    code, out, err = run_reminder(config, "send-due")

    assert code in (0, 1), f"{err}; {context}"
    assert out == ""
    lines = err.splitlines()
    assert code == (1 if lines else 0), f"{err}; {context}"
    assert all("is in doubt" in line for line in lines), f"{err}; {context}"
    assert_every_reminder_settled(config, twilio, context)
    reminders = load_reminders(config)
    unknown = {i for i, r in reminders.items() if r["state"] == "unknown"}
    assert {int(line.split()[1]) for line in lines} <= unknown, f"{err}; {context}"
    settled = [r for r in reminders.values() if r["reason"].startswith("settled with Twilio")]
    print("\n".join(log))
    print(f"{len(reminders) - len(unknown)} sent ({len(settled)} of them settled with Twilio), "
          f"{len(unknown)} in doubt that Twilio never got")  # fmt: skip


@pytest.mark.parametrize(("workers", "appointments"), [(1, 16), (4, 40)])
def test_send_due_killed_at_random_moments_never_sends_an_sms_twice(
    tmp_path: Path, twilio: FakeTwilio, workers: int, appointments: int
) -> None:
    crash_many_times(tmp_path, twilio, appointments=appointments, kills=6, workers=workers,
                     seed=SEED + workers)  # fmt: skip


@pytest.mark.torture
@pytest.mark.parametrize(("workers", "appointments"), [(1, 48), (8, 120)])
def test_send_due_killed_many_times_never_sends_an_sms_twice(
    tmp_path: Path, twilio: FakeTwilio, workers: int, appointments: int
) -> None:
    crash_many_times(tmp_path, twilio, appointments=appointments, kills=40, workers=workers,
                     seed=SEED + 1000 + workers)  # fmt: skip


@pytest.mark.parametrize("twilio_kept_it", [True, False], ids=["kept", "lost"])
def test_an_sms_a_killed_run_left_in_flight_is_settled_with_twilio_never_resent(
    tmp_path: Path, twilio: FakeTwilio, twilio_kept_it: bool
) -> None:
    """SIGKILL while Twilio holds the first SMS unanswered. The next run: Twilio has it → sent
    with its SID, quietly; Twilio never got it → in doubt (too recent to send again), one line
    on stderr. Either way no second POST to that number, and the others go out."""
    config = setup_practice(tmp_path, twilio, 3, workers=1)
    first = phone_of(0)
    held = threading.Event()

    def hold(fake: FakeTwilio, form: dict[str, str]) -> Response:
        if twilio_kept_it:
            fake.keep(form)
        held.wait(30)
        return unavailable(fake)

    twilio.answers[first] = hold
    proc = start_reminder(config, "send-due")
    until(lambda: len(twilio.posts) == 1, 10)
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    held.set()
    wait_until_twilio_is_idle(twilio)
    left = load_reminders(config)
    [rid] = [i for i, r in left.items() if r["recipient"] == first]
    assert left[rid]["state"] == "sending"
    assert {r["state"] for i, r in left.items() if i != rid} == {"pending"}

    code, out, err = run_reminder(config, "send-due")

    assert code == (0 if twilio_kept_it else 1), err
    assert out == ""
    assert sorted(f["To"] for f in twilio.posts) == [phone_of(i) for i in range(3)]
    assert [q["To"] for q in twilio.list_queries] == [first]
    reminder = load_reminders(config)[rid]
    if twilio_kept_it:
        sid = twilio.sid_for(first)
        assert err == ""
        assert (reminder["state"], reminder["provider_id"]) == ("sent", sid)
        assert reminder["reason"] == f"settled with Twilio: it accepted this message as {sid}"
    else:
        assert err == (
            f"reminder {rid} (sms to {first[:5]}***{first[-4:]}) is in doubt: a run ended while "
            f"sending it; check with the provider, then `reminder replay {rid}` if it never "
            "arrived\n"
        )
        assert (reminder["state"], reminder["provider_id"]) == ("unknown", None)
    assert_every_reminder_settled(config, twilio, "after the sweep")

    again = run_reminder(config, "send-due")

    assert again[0] == 0, again[2]
    assert len(twilio.posts) == 3  # a later run still does not send it blindly
    assert load_reminders(config)[rid]["state"] == reminder["state"]
