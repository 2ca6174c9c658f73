"""`reminder replay`: a person sends chosen reminders again, safely.

The outage day (Monday 2027-01-11, America/Chicago = UTC-6, appointments on Tuesday; "1d"
reminders are due at the same wall-clock time on Monday): from 09:00 to 12:00 CST
(15:00-18:00 UTC) the practice's SMTP relay (a real aiosmtpd server) refuses every recipient
with 554, so every email reminder due in those three hours fails. SMS goes to the outbox and
never fails. One address (Fay's) does not exist and is refused with 550 before the outage.

| appointment | contacts | starts (CST) | due (UTC) | at the end of the day |
| OUT-1 Avery | email, mobile | 08:30 | 14:30 | both sent |
| OUT-2 Brook | email | 09:00 | 15:00 | failed in the outage (the window includes its start) |
| OUT-3 Cam | email, mobile | 10:15 | 16:15 | email failed in the outage, SMS sent |
| OUT-4 Dana | email | 11:55 | 17:55 | failed in the outage |
| OUT-5 Emil | email | 12:00 | 18:00 | sent: the outage is over (the window excludes its end) |
| OUT-6 Fay | email (no such user) | 08:00 | 14:00 | failed before the outage |
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import Result
from freezegun import freeze_time

from tests.admin_support import (
    at,
    due_now_rows,
    journal_of,
    lock_held,
    lock_record,
    query,
    reminder_id,
    sms_in_outbox,
    start_reminder,
    state_of,
    utc,
    write_csv,
)
from tests.conftest import Handler, SmtpServer, free_port, invoke, serving, wait_for, write_config

OUTAGE_REFUSAL = "554 5.7.1 Relay access denied"
FAY = "fay@patients.example"
PEOPLE = {
    "OUT-1": ("Avery Lindqvist", "avery@patients.example", "(312) 555-0142", "08:30"),
    "OUT-2": ("Brook Tanaka", "brook@patients.example", "", "09:00"),
    "OUT-3": ("Cam Ferreira", "cam@patients.example", "(312) 555-0177", "10:15"),
    "OUT-4": ("Dana O'Connell", "dana@patients.example", "", "11:55"),
    "OUT-5": ("Emil Novak", "emil@patients.example", "", "12:00"),
    "OUT-6": ("Fay Nobody", FAY, "", "08:00"),
}
IN_OUTAGE = ["brook@patients.example", "cam@patients.example", "dana@patients.example"]
WINDOW = ("--since", "2027-01-11T09:00", "--until", "2027-01-11T12:00")  # practice time
AFTERNOON = utc(2027, 1, 11, 19, 0)  # 13:00 CST, when the manager replays
OPERATOR = {"USER": "pat", "SUDO_USER": None}


@dataclass
class OutageDay:
    config: Path
    server: SmtpServer  # this test's server: it has received nothing yet
    before: list[str]  # who got an email during the day itself

    def email_id(self, address: str) -> int:
        return reminder_id(self.config, "email", address)

    def received(self) -> list[str]:
        return self.before + [r for m in self.server.received for r in m.rcpt_tos]


@pytest.fixture(scope="module")
def outage_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """The outage day, built once through the real commands; each test gets a copy."""
    directory = tmp_path_factory.mktemp("outage-day")
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = write_config(directory, email_transport="smtp", port=port)
        rows = [{"appointment_id": a, "name": n, "email": e, "phone": p,
                 "starts_at": f"2027-01-12T{t}"} for a, (n, e, p, t) in PEOPLE.items()
                ]  # fmt: skip
        csv_path = write_csv(directory / "a.csv", rows)
        imported = at(utc(2027, 1, 11, 12), config, "import", str(csv_path))
        assert imported.exit_code == 0, imported.stderr
        handler.replies[FAY] = "550 5.1.1 no such user"
        for instant, outage, code in [
            (utc(2027, 1, 11, 14, 0), False, 1),  # Fay: no such user
            (utc(2027, 1, 11, 14, 30), False, 0),  # Avery, both channels
            (utc(2027, 1, 11, 15, 0), True, 1),  # Brook
            (utc(2027, 1, 11, 16, 15), True, 1),  # Cam's email (his SMS goes out)
            (utc(2027, 1, 11, 17, 55), True, 1),  # Dana
            (utc(2027, 1, 11, 18, 0), False, 0),  # Emil: the relay is back
        ]:
            for _, address, _, _ in PEOPLE.values():
                if address != FAY:
                    if outage:
                        handler.replies[address] = OUTAGE_REFUSAL
                    else:
                        handler.replies.pop(address, None)
            result = at(instant, config, "send-due")
            assert result.exit_code == code, (instant, result.stderr)
        before = [r for m in handler.received for r in m.rcpt_tos]
        assert sorted(before) == ["avery@patients.example", "emil@patients.example"]
        for address in [*IN_OUTAGE, FAY]:
            assert state_of(config, reminder_id(config, "email", address)) == "failed", address
        with closing(sqlite3.connect(journal_of(config))) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        yield directory, before
    finally:
        controller.stop()


@pytest.fixture
def outage_day(
    outage_template: tuple[Path, list[str]], tmp_path: Path, smtp_server: SmtpServer
) -> OutageDay:
    template, before = outage_template
    directory = tmp_path / "day"
    shutil.copytree(template, directory)
    config = write_config(directory, email_transport="smtp", port=smtp_server.port)
    return OutageDay(config, smtp_server, list(before))


def replay(day: OutageDay, *args: str, instant: datetime = AFTERNOON, **env: str | None) -> Result:
    """`reminder replay ...` at `instant`, run by "pat" unless USER/SUDO_USER are given."""
    return at(instant, day.config, "replay", *args, **(env or OPERATOR))


# -- the outage window -----------------------------------------------------------------------


def test_replaying_the_outage_window_sends_each_failed_reminder_once(outage_day: OutageDay) -> None:
    sms_before = sms_in_outbox(outage_day.config)
    result = replay(outage_day, *WINDOW, "--yes", "--reason", "relay outage 09:00-12:00")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert sorted(outage_day.received()) == sorted(
        ["avery@patients.example", "emil@patients.example", *IN_OUTAGE]
    )
    assert sms_in_outbox(outage_day.config) == sms_before  # Cam's SMS had gone out
    for address in IN_OUTAGE:
        assert state_of(outage_day.config, outage_day.email_id(address)) == "sent"
    assert state_of(outage_day.config, outage_day.email_id(FAY)) == "failed"  # before 09:00
    assert "sent 3" in result.stdout


def test_replaying_the_same_window_again_sends_nothing(outage_day: OutageDay) -> None:
    first = replay(outage_day, *WINDOW, "--yes", "--reason", "relay outage")
    assert first.exit_code == 0, first.stderr
    count = len(outage_day.received())
    second = replay(outage_day, *WINDOW, "--yes", "--reason", "relay outage",
                    instant=AFTERNOON + timedelta(minutes=5))  # fmt: skip
    assert second.exit_code == 0, second.stderr
    assert len(outage_day.received()) == count
    assert "Nothing to send." in second.stdout
    replays = query(outage_day.config, "SELECT COUNT(*) AS n FROM replays")
    assert replays[0]["n"] == 3


def test_replay_window_times_are_in_the_practice_zone_unless_an_offset_is_given(
    outage_day: OutageDay,
) -> None:
    expected = sorted(outage_day.email_id(a) for a in IN_OUTAGE)

    def previewed(*window: str) -> list[int]:
        result = replay(outage_day, *window, "--dry-run")
        assert result.exit_code == 0, result.stderr
        ids = {outage_day.email_id(p[1]) for p in PEOPLE.values()}
        return sorted(i for i in ids if f"\n{i} " in "\n" + result.stdout)

    assert previewed(*WINDOW) == expected
    utc_window = ("--since", "2027-01-11T15:00:00+00:00", "--until", "2027-01-11T18:00:00Z")
    assert previewed(*utc_window) == expected
    # the same wall-clock numbers read as practice time are six hours later: nothing failed then
    assert previewed("--since", "2027-01-11T15:00", "--until", "2027-01-11T18:00") == []
    assert outage_day.received() == ["avery@patients.example", "emil@patients.example"]


def test_replay_dry_run_previews_who_would_get_what_and_sends_nothing(
    outage_day: OutageDay,
) -> None:
    result = replay(outage_day, *WINDOW, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "Would send 3 reminder(s)" in result.stdout
    for address, name in zip(IN_OUTAGE, ["Brook Tanaka", "Cam Ferreira", "Dana O'Connell"],
                             strict=True):  # fmt: skip
        line = next(x for x in result.stdout.splitlines() if address in x)
        assert name in line and "failed" in line and "email" in line
    assert FAY not in result.stdout
    assert len(outage_day.received()) == 2
    for address in IN_OUTAGE:
        assert state_of(outage_day.config, outage_day.email_id(address)) == "failed"
    assert query(outage_day.config, "SELECT COUNT(*) AS n FROM replays")[0]["n"] == 0


def test_replay_without_a_terminal_or_yes_refuses_with_exit_2_and_sends_nothing(
    outage_day: OutageDay,
) -> None:
    result = replay(outage_day, *WINDOW, "--reason", "relay outage")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert "no terminal" in line and "--yes" in line
    assert len(outage_day.received()) == 2
    for address in IN_OUTAGE:
        assert state_of(outage_day.config, outage_day.email_id(address)) == "failed"
    assert query(outage_day.config, "SELECT COUNT(*) AS n FROM replays")[0]["n"] == 0


def test_replay_without_any_selector_is_a_usage_error(outage_day: OutageDay) -> None:
    result = replay(outage_day, "--yes")
    assert result.exit_code == 2
    assert "--state" in result.stderr and "--since" in result.stderr
    assert len(outage_day.received()) == 2


def test_replay_by_channel_sends_only_that_channel(outage_day: OutageDay) -> None:
    result = replay(outage_day, "--state", "failed", "--channel", "sms", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Nothing to send." in result.stdout
    assert len(outage_day.received()) == 2


# -- --force, history, operator --------------------------------------------------------------


def test_replay_refuses_a_sent_reminder_without_force_and_names_the_option(
    outage_day: OutageDay,
) -> None:
    avery = outage_day.email_id("avery@patients.example")
    result = replay(outage_day, str(avery), "--yes", "--reason", "patient says nothing came")
    assert result.exit_code == 0, result.stderr
    assert "Nothing to send." in result.stdout
    [refused] = [line for line in result.stdout.splitlines() if line.startswith(f"{avery} ")]
    assert "--force" in refused
    assert outage_day.received().count("avery@patients.example") == 1


def test_forced_replay_of_a_sent_reminder_sends_it_once_more_and_show_tells_both_attempts(
    outage_day: OutageDay,
) -> None:
    avery = outage_day.email_id("avery@patients.example")
    reason = "patient called: no email arrived"
    result = replay(outage_day, str(avery), "--force", "--yes", "--reason", reason)
    assert result.exit_code == 0, result.stderr
    assert outage_day.received().count("avery@patients.example") == 2
    assert state_of(outage_day.config, avery) == "sent"

    shown = at(AFTERNOON + timedelta(minutes=1), outage_day.config, "show", str(avery))
    assert shown.exit_code == 0, shown.stderr
    attempts = [
        line
        for line in shown.stdout.splitlines()
        if line.strip().startswith(("attempt 1:", "attempt 2:"))
    ]
    assert [a.split()[1] for a in attempts] == ["1:", "2:"]
    assert "Jan 11 08:30 CST" in attempts[0]  # the cron run at 14:30Z, in Chicago time
    assert "Jan 11 13:00 CST" in attempts[1]  # the replay at 19:00Z
    assert all(", sent" in a for a in attempts)
    [replayed] = [line for line in shown.stdout.splitlines() if "replay requested" in line]
    assert "Jan 11 13:00 CST" in replayed
    assert "by pat" in replayed and "(forced)" in replayed and "from state sent" in replayed
    assert replayed.endswith(reason)


def test_a_second_forced_replay_sends_once_more_again(outage_day: OutageDay) -> None:
    avery = outage_day.email_id("avery@patients.example")
    for minute in (0, 10):
        result = replay(outage_day, str(avery), "--force", "--yes", "--reason", "again",
                        instant=AFTERNOON + timedelta(minutes=minute))  # fmt: skip
        assert result.exit_code == 0, result.stderr
    assert outage_day.received().count("avery@patients.example") == 3


def test_replay_records_sudo_user_as_the_operator_rather_than_root(outage_day: OutageDay) -> None:
    result = replay(outage_day, *WINDOW, "--yes", "--reason", "relay outage",
                    USER="root", SUDO_USER="dr_okafor")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = query(outage_day.config, "SELECT operator, reason, from_state FROM replays")
    assert [tuple(r) for r in rows] == [("dr_okafor", "relay outage", "failed")] * 3
    shown = at(AFTERNOON, outage_day.config, "show", str(outage_day.email_id(IN_OUTAGE[0])))
    assert "by dr_okafor" in shown.stdout


def test_replay_refuses_and_lists_a_reminder_whose_appointment_has_started(
    outage_day: OutageDay,
) -> None:
    # Tuesday 08:45 CST: Fay's 08:00 appointment has started; the outage ones have not
    tuesday = utc(2027, 1, 12, 14, 45)
    result = replay(outage_day, "--state", "failed", "--yes", "--reason", "catch up",
                    instant=tuesday)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    fay = outage_day.email_id(FAY)
    [refused] = [line for line in result.stdout.splitlines() if line.startswith(f"{fay} ")]
    assert FAY in refused and "already started" in refused
    assert "Refused 1 reminder(s)" in result.stdout
    assert sorted(outage_day.received()) == sorted(
        ["avery@patients.example", "emil@patients.example", *IN_OUTAGE]
    )
    assert state_of(outage_day.config, fay) == "failed"


# -- the recipient cap -----------------------------------------------------------------------


def test_replay_keeps_the_recipient_cap_unless_told_to_ignore_it(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port,
                          extra="max_per_recipient_per_day = 1")  # fmt: skip
    rows = [{"appointment_id": a, "name": "Avery Lindqvist", "email": "avery@patients.example",
             "starts_at": t} for a, t in (("C-1", "2027-01-12T09:00"), ("C-2", "2027-01-12T10:00"))
            ]  # fmt: skip
    assert at(utc(2027, 1, 11, 12), config, "import", str(write_csv(tmp_path / "c.csv", rows))
              ).exit_code == 0  # fmt: skip
    assert at(utc(2027, 1, 11, 16, 0), config, "send-due").exit_code == 1  # C-2 suppressed
    second = reminder_id(config, "email", "avery@patients.example", "C-2")
    assert state_of(config, second) == "suppressed"

    capped = at(utc(2027, 1, 11, 17), config, "replay", str(second), "--yes", "--reason", "x")
    assert capped.exit_code == 1
    assert f"reminder {second}" in capped.stderr and "recipient cap" in capped.stderr
    assert smtp_server.recipients() == ["avery@patients.example"]
    assert state_of(config, second) == "suppressed"

    forced = at(utc(2027, 1, 11, 17, 5), config, "replay", str(second), "--ignore-cap", "--yes",
                "--reason", "two appointments, two reminders")  # fmt: skip
    assert forced.exit_code == 0, forced.stderr
    assert smtp_server.recipients() == ["avery@patients.example"] * 2
    assert state_of(config, second) == "sent"


# -- the lock --------------------------------------------------------------------------------


def test_replay_gives_up_with_a_clear_error_when_the_lock_stays_held(
    outage_day: OutageDay,
) -> None:
    brook = outage_day.email_id("brook@patients.example")
    with lock_held(outage_day.config, 31337, AFTERNOON - timedelta(minutes=2)):
        started = time.monotonic()
        with freeze_time(AFTERNOON, tick=True):  # the wait is measured on a clock that moves
            result = invoke(outage_day.config, "replay", str(brook), "--yes", "--reason", "x",
                            "--lock-timeout", "1", env=OPERATOR)  # fmt: skip
        waited = time.monotonic() - started
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "pid 31337" in line and "--lock-timeout" in line and "1 s" in line
    assert 1 <= waited < 10
    assert len(outage_day.received()) == 2
    assert state_of(outage_day.config, brook) == "failed"
    assert query(outage_day.config, "SELECT COUNT(*) AS n FROM replays")[0]["n"] == 0


@pytest.fixture
def slow_server() -> Iterator[SmtpServer]:
    """A server of its own, made slow by the test once the failed reminder is in place."""
    with serving(Handler()) as server:
        yield server


def test_replay_waits_for_a_running_send_due_then_proceeds(
    tmp_path: Path, slow_server: SmtpServer
) -> None:
    # real clock: the send-due subprocess cannot have a frozen one
    config = write_config(tmp_path, email_transport="smtp", port=slow_server.port, workers=1)
    first = due_now_rows([("W-1", "Fay Nobody", FAY, "")])
    assert invoke(config, "import", str(write_csv(tmp_path / "a.csv", first))).exit_code == 0
    slow_server.handler.replies[FAY] = "550 5.1.1 mailbox full for good"
    assert invoke(config, "send-due").exit_code == 1
    fay = reminder_id(config, "email", FAY)
    assert state_of(config, fay) == "failed"
    del slow_server.handler.replies[FAY]

    later = due_now_rows([("W-2", "Brook Tanaka", "brook@patients.example", ""),
                          ("W-3", "Cam Ferreira", "cam@patients.example", "")])  # fmt: skip
    assert invoke(config, "import", str(write_csv(tmp_path / "b.csv", later))).exit_code == 0
    slow_server.handler.delay = 0.5  # each DATA answered after 0.5 s; one worker: >= 1 s
    proc = start_reminder(config, "send-due")
    try:
        wait_for(lambda: lock_record(config).get("pid") == proc.pid)
        started = time.monotonic()
        result = invoke(config, "replay", str(fay), "--yes", "--reason", "mailbox fixed",
                        "--lock-timeout", "30", env=OPERATOR)  # fmt: skip
        waited = time.monotonic() - started
        assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert result.exit_code == 0, result.stderr
    assert waited >= 0.4  # it did wait for the running send-due
    assert [r for m in slow_server.received for r in m.rcpt_tos] == [
        "brook@patients.example",
        "cam@patients.example",
        FAY,
    ]
    assert state_of(config, fay) == "sent"
    runs = query(config, "SELECT kind, started_at, finished_at FROM runs ORDER BY id")
    assert [r["kind"] for r in runs] == ["send-due", "send-due", "replay"]
    assert runs[2]["started_at"] >= runs[1]["finished_at"]


def test_replay_summary_is_one_line_per_outcome_kind(outage_day: OutageDay) -> None:
    result = replay(outage_day, *WINDOW, "--yes", "--reason", "x")
    assert result.exit_code == 0, result.stderr
    [summary] = [line for line in result.stdout.splitlines() if line.startswith("Replay run #")]
    run_id = query(outage_day.config, "SELECT MAX(id) AS id FROM runs WHERE kind = 'replay'")
    assert summary.startswith(f"Replay run #{run_id[0]['id']}: sent 3, failed 0, in doubt 0")


def test_replay_records_its_own_run_with_its_time_and_counts(outage_day: OutageDay) -> None:
    """The replay's own run is recorded at the time it ran, with its counts."""
    result = replay(outage_day, *WINDOW, "--yes", "--reason", "x")
    assert result.exit_code == 0, result.stderr
    [run] = query(outage_day.config, "SELECT * FROM runs WHERE kind = 'replay'")
    assert datetime.fromisoformat(run["started_at"]) == AFTERNOON.astimezone(UTC)
    assert (run["outcome"], run["sent"], run["failed"]) == ("ok", 3, 0)


def test_replay_rejects_a_time_it_cannot_read_with_exit_2(outage_day: OutageDay) -> None:
    result = replay(outage_day, "--since", "yesterday", "--yes")
    assert result.exit_code == 2
    assert "--since" in result.stderr and "2027-01-12T09:00" in result.stderr
    assert len(outage_day.received()) == 2


def test_replay_of_an_id_that_does_not_exist_says_so_with_exit_2(outage_day: OutageDay) -> None:
    result = replay(outage_day, "9999", "--yes", "--reason", "typo")
    assert result.exit_code == 2
    assert "9999" in result.stderr
