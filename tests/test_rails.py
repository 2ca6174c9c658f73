"""Safety rails through the CLI with a frozen clock: expiry after an outage, the recipient cap,
the run ceiling (max_per_run), retries with backoff, and reschedules.

Every expected instant below is worked out by hand. The appointments are in Europe/London,
which is UTC+0 in January, so local wall-clock time and UTC agree and no quiet hours are near
(the runs are between 10:00 and 14:00 local). Default lateness limits (config.py): half the
rule's lead, at most 12 hours: "1d" -> 12 h, "2h" -> 1 h.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from tests.conftest import NOW, SmtpServer, free_port, invoke, write_config
from tests.rails_support import (
    appt,
    dispatches,
    emails_sent,
    execute,
    iso,
    query,
    reminder_by,
    reminders,
    runs,
    sms_sent,
    states,
    status_json,
    stderr_lines,
    utc,
    write_csv,
)

LONDON = "Europe/London"
MINUTE = timedelta(minutes=1)

BACKLOG_RULES = """\
[[rules]]
name = "day-before"
before = "1d"
channels = ["email", "sms"]

[[rules]]
name = "two-hours"
before = "2h"
channels = ["email"]

[[rules]]
name = "last-call"
before = "30m"
channels = ["email"]
max_late = "1h"
"""

EMAIL_DAY_BEFORE = """\
[[rules]]
name = "day-before"
before = "1d"
channels = ["email"]
"""

TWO_HOURS_EMAIL = """\
[[rules]]
name = "two-hours"
before = "2h"
channels = ["email"]
"""


def smtp_practice(
    tmp_path: Path, server: SmtpServer, rules: str, *, workers: int = 4, extra: str = ""
) -> Path:
    return write_config(
        tmp_path,
        rules=rules,
        email_transport="smtp",
        port=server.port,
        workers=workers,
        extra=extra,
    )


def import_at(config: Path, csv_path: Path, moment: datetime) -> None:
    with freeze_time(moment):
        result = invoke(config, "import", str(csv_path))
    assert result.exit_code == 0, result.output


# -- expiry: a backlog after an outage ---------------------------------------------------------

# NOW is 2027-01-11 12:00Z. The practice imports at 08:00Z, cron last runs at 10:00Z, then
# does not run for three hours; the next run is at 13:00Z.
IMPORTED = NOW - 4 * 60 * MINUTE  # 08:00Z
LAST_RUN = NOW - 2 * 60 * MINUTE  # 10:00Z
BACKLOG_RUN = NOW + 60 * MINUTE  # 13:00Z

BACKLOG = [
    # P0, 11:30 today: two-hours due 09:30, expires 10:30 -> sent by the 10:00 run;
    # last-call due 11:00, expires at the start 11:30 -> expired by 13:00.
    appt("P0", "2027-01-11T11:30", LONDON, email="p0@patients.example"),
    # P1, 10:30 tomorrow: day-before due 10:30 today (during the outage), expires 22:30 -> sent
    # by email and SMS at 13:00; its two-hours and last-call are tomorrow.
    appt("P1", "2027-01-12T10:30", LONDON, email="p1@patients.example", phone="+447911123456"),
    # P2, 14:30 today: two-hours due 12:30, expires 13:30 -> sent at 13:00;
    # last-call due 14:00 -> still pending.
    appt("P2", "2027-01-11T14:30", LONDON, email="p2@patients.example"),
    # P3, 12:20 today (over before the backlog run): two-hours due 10:20, expires 11:20 (its
    # lateness limit); last-call due 11:50, expires 12:20 (the start) -> both expired.
    appt("P3", "2027-01-11T12:20", LONDON, email="p3@patients.example"),
    # P4, 13:10 today: two-hours due 11:10, expires 12:10 -> expired; last-call due 12:40,
    # expires 13:10 -> still useful at 13:00: sent. Two fell due, one goes out.
    appt("P4", "2027-01-11T13:10", LONDON, email="p4@patients.example"),
]
# Every day-before reminder of an appointment today was due yesterday and expired (12 h late)
# before the 08:00 import: they are planned straight into `expired`.


def test_backlog_after_a_three_hour_outage_sends_what_is_still_useful_and_expires_the_rest(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = smtp_practice(tmp_path, smtp_server, BACKLOG_RULES)
    db = tmp_path / "reminders.db"
    import_at(config, write_csv(tmp_path / "week.csv", BACKLOG), IMPORTED)

    with freeze_time(LAST_RUN):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert smtp_server.recipients() == ["p0@patients.example"]

    with freeze_time(BACKLOG_RUN):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output  # expiries are news for cron's mail
    assert result.stdout == ""
    assert stderr_lines(result) == [
        "reminder: 4 reminder(s) expired unsent, too late to be useful (was send-due not "
        "running?); `reminder status` lists them"
    ]

    assert states(db) == {
        ("P0", "day-before", "email"): "expired",
        ("P0", "two-hours", "email"): "sent",
        ("P0", "last-call", "email"): "expired",
        ("P1", "day-before", "email"): "sent",
        ("P1", "day-before", "sms"): "sent",
        ("P1", "two-hours", "email"): "pending",
        ("P1", "last-call", "email"): "pending",
        ("P2", "day-before", "email"): "expired",
        ("P2", "two-hours", "email"): "sent",
        ("P2", "last-call", "email"): "pending",
        ("P3", "day-before", "email"): "expired",
        ("P3", "two-hours", "email"): "expired",
        ("P3", "last-call", "email"): "expired",
        ("P4", "day-before", "email"): "expired",
        ("P4", "two-hours", "email"): "expired",
        ("P4", "last-call", "email"): "sent",
    }
    # Nobody got two: each address (and the one phone) exactly once, each the right reminder.
    got = emails_sent(smtp_server) + sms_sent(tmp_path / "outbox")
    assert Counter(to for _, to in got) == {
        "p0@patients.example": 1,
        "p1@patients.example": 1,
        "+447911123456": 1,
        "p2@patients.example": 1,
        "p4@patients.example": 1,
    }
    assert sorted(i for i, _ in got) == sorted(
        reminder_by(db, a, rule, ch)["id"]
        for a, rule, ch in [
            ("P0", "two-hours", "email"),
            ("P1", "day-before", "email"),
            ("P1", "day-before", "sms"),
            ("P2", "two-hours", "email"),
            ("P4", "last-call", "email"),
        ]
    )

    # The reasons are in the journal and in `status --json`.
    lateness = "not sent before its lateness limit"
    started = "not sent before the appointment started"
    for key, reason in {
        ("P0", "last-call"): started,
        ("P3", "two-hours"): lateness,
        ("P3", "last-call"): started,
        ("P4", "two-hours"): lateness,
    }.items():
        assert reminder_by(db, *key, "email")["reason"] == reason, key
    with freeze_time(BACKLOG_RUN):
        status = status_json(config)
    assert status["counts"] == {
        "pending": 3,
        "sending": 0,
        "sent": 5,
        "failed": 0,
        "unknown": 0,
        "cancelled": 0,
        "expired": 8,
        "suppressed": 0,
    }
    listed = {(e["appointment_id"], e["rule"]): e["reason"] for e in status["expired"]}
    at_import = {k: v for k, v in listed.items() if v.startswith("planned")}
    assert {k: v for k, v in listed.items() if k not in at_import} == {
        ("P0", "last-call"): started,
        ("P3", "two-hours"): lateness,
        ("P3", "last-call"): started,
        ("P4", "two-hours"): lateness,
    }
    # The four day-before reminders planned too late say so, with their due and expiry times.
    assert sorted(at_import) == [(a, "day-before") for a in ("P0", "P2", "P3", "P4")]
    assert "2027-01-10 12:20" in at_import[("P3", "day-before")]
    assert "2027-01-11 00:20" in at_import[("P3", "day-before")]
    last = status["last_run"]
    assert (last["outcome"], last["sent"], last["expired"], last["failed"]) == (
        "problems",
        4,
        4,
        0,
    )

    # A second run at the same moment sends nothing again.
    with freeze_time(BACKLOG_RUN + 5 * MINUTE):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert len(smtp_server.received) == 4
    assert len(sms_sent(tmp_path / "outbox")) == 1


def test_a_reminder_is_never_sent_at_or_after_its_appointment_starts(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # A rule whose lateness limit (3 h) is longer than its lead (1 h): the start decides.
    rules = '[[rules]]\nname = "hour"\nbefore = "1h"\nchannels = ["email"]\nmax_late = "3h"\n'
    config = smtp_practice(tmp_path, smtp_server, rules)
    db = tmp_path / "reminders.db"
    # Starts 12:00Z: due 11:00Z, expires exactly at 12:00Z (not 14:00Z).
    import_at(
        config,
        write_csv(
            tmp_path / "a.csv", [appt("S", "2027-01-11T12:00", LONDON, email="s@patients.example")]
        ),
        NOW - 3 * 60 * MINUTE,
    )
    assert reminder_by(db, "S", "hour", "email")["expires_at"] == "2027-01-11T12:00:00+00:00"
    with freeze_time(NOW):  # the very second it starts
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    assert smtp_server.received == []
    row = reminder_by(db, "S", "hour", "email")
    assert (row["state"], row["reason"]) == ("expired", "not sent before the appointment started")


# -- the recipient cap ---------------------------------------------------------------------------

CAP_REASON = (
    "recipient cap: 3 reminder(s) already went to this recipient in the last 24 hours (limit 3)"
)


def insert_duplicates(db: Path, of_reminder: int, rules: list[str]) -> list[int]:
    """A planner bug: copies of a reminder under other rule names, all due now."""
    for rule in rules:
        execute(
            db,
            """INSERT INTO reminders (appointment_id, rule, channel, recipient, starts_at,
                   due_at, expires_at, not_before, state, created_at, updated_at)
               SELECT appointment_id, ?, channel, recipient, starts_at, due_at, expires_at,
                   not_before, 'pending', created_at, updated_at FROM reminders WHERE id = ?""",
            [rule, of_reminder],
        )
    marks = ", ".join("?" for _ in rules)
    rows = query(db, f"SELECT id FROM reminders WHERE rule IN ({marks}) ORDER BY id", rules)
    return [r["id"] for r in rows]


@pytest.mark.parametrize("workers", [1, 4])
def test_recipient_cap_holds_when_a_planner_bug_duplicates_due_reminders(
    tmp_path: Path, smtp_server: SmtpServer, workers: int
) -> None:
    config = smtp_practice(tmp_path, smtp_server, EMAIL_DAY_BEFORE, workers=workers)
    db = tmp_path / "reminders.db"
    # 14:00 tomorrow: day-before due 14:00Z today, expires 02:00Z tomorrow.
    import_at(
        config,
        write_csv(
            tmp_path / "a.csv",
            [appt("DUP", "2027-01-12T14:00", LONDON, email="dup@patients.example")],
        ),
        NOW,
    )
    original = reminder_by(db, "DUP", "day-before", "email")["id"]
    copies = insert_duplicates(db, original, ["bug-1", "bug-2", "bug-3", "bug-4"])
    assert len(copies) == 4

    # With workers=4 the first four are claimed before any has finished: the cap must count
    # claims in flight, not only finished sends.
    with freeze_time(NOW + 2 * 60 * MINUTE + MINUTE):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output

    assert smtp_server.recipients() == ["dup@patients.example"] * 3
    rows = {r["id"]: r for r in reminders(db)}
    assert Counter(r["state"] for r in rows.values()) == {"sent": 3, "suppressed": 2}
    suppressed = sorted(i for i, r in rows.items() if r["state"] == "suppressed")
    for reminder_id in suppressed:
        assert rows[reminder_id]["reason"] == CAP_REASON
        assert dispatches(db, reminder_id) == []  # never handed to a provider
    # One line on stderr per suppressed reminder, naming it and the rule that stopped it.
    lines = stderr_lines(result)
    assert lines == [
        f"reminder {i} (email to d***@patients.example): suppressed: {CAP_REASON}"
        for i in suppressed
    ]
    with freeze_time(NOW + 2 * 60 * MINUTE + MINUTE):
        status = status_json(config)
    assert status["counts"]["suppressed"] == 2
    assert sorted(s["id"] for s in status["suppressed"]) == suppressed
    assert {s["reason"] for s in status["suppressed"]} == {CAP_REASON}
    assert status["last_run"]["suppressed"] == 2


def test_recipient_cap_counts_a_rolling_24_hours_including_reminders_in_doubt(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = smtp_practice(tmp_path, smtp_server, EMAIL_DAY_BEFORE, workers=1)
    db = tmp_path / "reminders.db"
    # Two appointments a day apart for one patient; each gets duplicated twice by "a bug".
    rows = [
        appt("A", "2027-01-12T14:00", LONDON, email="pat@patients.example"),  # due 14:00 today
        appt("B", "2027-01-13T13:00", LONDON, email="pat@patients.example"),  # due 13:00 tmrw
    ]
    import_at(config, write_csv(tmp_path / "a.csv", rows), NOW)
    first = reminder_by(db, "A", "day-before", "email")["id"]
    insert_duplicates(db, first, ["bug-a"])
    with freeze_time(utc(2027, 1, 11, 14, 0)):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert len(smtp_server.received) == 2  # sent at 14:00:00Z today
    # Make the first of them in doubt (a crash mid-send): it still counts against the cap.
    execute(db, "UPDATE dispatches SET outcome = 'unknown' WHERE reminder_id = ?", [first])
    execute(db, "UPDATE reminders SET state = 'unknown' WHERE id = ?", [first])

    second = reminder_by(db, "B", "day-before", "email")["id"]
    insert_duplicates(db, second, ["bug-b", "bug-c"])
    # 13:00Z tomorrow is 23 hours later: two already went out, so one more may go.
    with freeze_time(utc(2027, 1, 12, 13, 0)):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    assert len(smtp_server.received) == 3
    later = query(db, "SELECT state, reason FROM reminders WHERE appointment_id = 'B'")
    assert Counter(r["state"] for r in later) == {"sent": 1, "suppressed": 2}

    # The two of 14:00:00Z leave the window 24 hours later: one second before, it still
    # holds three; at 14:00:00Z only the one of 13:00Z is in it, so two more may go.
    execute(db, "UPDATE reminders SET state = 'pending', reason = '' WHERE state = 'suppressed'")
    with freeze_time(utc(2027, 1, 12, 13, 59, 59)):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    assert len(smtp_server.received) == 3
    execute(db, "UPDATE reminders SET state = 'pending', reason = '' WHERE state = 'suppressed'")
    with freeze_time(utc(2027, 1, 12, 14, 0)):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert len(smtp_server.received) == 5


def test_recipient_cap_counts_normalised_phone_numbers_for_sms(tmp_path: Path) -> None:
    rules = '[[rules]]\nname = "day-before"\nbefore = "1d"\nchannels = ["sms"]\n'
    config = write_config(tmp_path, rules=rules, extra="max_per_recipient_per_day = 2")
    db = tmp_path / "reminders.db"
    # One person, the number written three ways on three appointments due the same afternoon.
    rows = [
        appt("N1", "2027-01-12T14:00", LONDON, phone="+44 7911 123456"),
        appt("N2", "2027-01-12T14:10", LONDON, phone="+447911123456"),
        appt("N3", "2027-01-12T14:20", LONDON, phone="+44 (0)7911-123-456"),
    ]
    import_at(config, write_csv(tmp_path / "a.csv", rows), NOW)
    with freeze_time(utc(2027, 1, 11, 14, 30)):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    assert [to for _, to in sms_sent(tmp_path / "outbox")] == ["+447911123456"] * 2
    assert states(db)[("N3", "day-before", "sms")] == "suppressed"
    assert reminder_by(db, "N3", "day-before", "sms")["reason"] == (
        "recipient cap: 2 reminder(s) already went to this recipient in the last 24 hours (limit 2)"
    )


# -- the run ceiling ---------------------------------------------------------------------------


def five_due(tmp_path: Path, config: Path) -> Path:
    rows = [
        appt(f"R{i}", f"2027-01-12T1{i}:00", LONDON, email=f"r{i}@patients.example")
        for i in range(5)
    ]  # day-before due 10:00..14:00Z today
    import_at(config, write_csv(tmp_path / "a.csv", rows), NOW - 3 * 60 * MINUTE)
    return tmp_path / "reminders.db"


def test_max_per_run_stops_claiming_says_so_on_stderr_exits_1_and_leaves_the_rest_pending(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = smtp_practice(tmp_path, smtp_server, EMAIL_DAY_BEFORE, extra="max_per_run = 2")
    db = five_due(tmp_path, config)
    at = utc(2027, 1, 11, 14, 5)
    with freeze_time(at):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    assert stderr_lines(result) == ["reminder: max_per_run (2) reached; the rest stays pending"]
    assert smtp_server.recipients() == ["r0@patients.example", "r1@patients.example"]
    assert Counter(r["state"] for r in reminders(db)) == {"sent": 2, "pending": 3}
    assert len(dispatches(db)) == 2
    run = runs(db)[-1]
    assert (run["outcome"], run["reason"], run["sent"]) == (
        "stopped_early",
        "max_per_run (2) reached; the rest stays pending",
        2,
    )

    with freeze_time(at + 5 * MINUTE):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    assert Counter(r["state"] for r in reminders(db)) == {"sent": 4, "pending": 1}
    with freeze_time(at + 10 * MINUTE):
        result = invoke(config, "send-due")
    assert Counter(r["state"] for r in reminders(db)) == {"sent": 5}
    assert sorted(smtp_server.recipients()) == [f"r{i}@patients.example" for i in range(5)]


def test_max_per_run_is_not_reported_when_the_run_sent_everything_that_was_due(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = smtp_practice(tmp_path, smtp_server, EMAIL_DAY_BEFORE, extra="max_per_run = 5")
    db = five_due(tmp_path, config)
    with freeze_time(utc(2027, 1, 11, 14, 5)):
        result = invoke(config, "send-due")
    assert Counter(r["state"] for r in reminders(db)) == {"sent": 5}
    assert (result.exit_code, result.stderr) == (0, "")
    assert runs(db)[-1]["outcome"] == "ok"


def test_max_per_run_is_off_by_default(tmp_path: Path, smtp_server: SmtpServer) -> None:
    config = smtp_practice(tmp_path, smtp_server, EMAIL_DAY_BEFORE)
    db = five_due(tmp_path, config)
    with freeze_time(utc(2027, 1, 11, 14, 5)):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert Counter(r["state"] for r in reminders(db)) == {"sent": 5}


# -- retries ---------------------------------------------------------------------------------

RCPT_451 = "451 4.3.0 try later"


def test_a_transient_smtp_refusal_retries_after_a_cron_interval_then_fails_after_max_attempts(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # max_attempts 3; cron_interval 5m (the default): backoff 5 m, then 10 m (each + up to 25%).
    config = smtp_practice(tmp_path, smtp_server, EMAIL_DAY_BEFORE, extra="max_attempts = 3")
    db = tmp_path / "reminders.db"
    smtp_server.handler.replies["busy@patients.example"] = RCPT_451
    # 18:00 tomorrow: due 18:00Z today, expires 06:00Z tomorrow (12 h): room for every retry.
    import_at(
        config,
        write_csv(
            tmp_path / "a.csv",
            [appt("T", "2027-01-12T18:00", LONDON, email="busy@patients.example")],
        ),
        NOW,
    )
    reminder_id = reminder_by(db, "T", "day-before", "email")["id"]
    at = utc(2027, 1, 11, 18, 0)
    for attempt, backoff in [(1, 5 * MINUTE), (2, 10 * MINUTE)]:
        with freeze_time(at):
            result = invoke(config, "send-due")
        assert result.exit_code == 1, result.output
        assert stderr_lines(result) == [
            f"reminder {reminder_id} (email to b***@patients.example): not sent this time, "
            "will retry: smtp 451: RCPT TO: 4.3.0 try later"
        ]
        row = reminder_by(db, "T", "day-before", "email")
        assert (row["state"], row["attempts"]) == ("pending", attempt)
        assert iso(at + backoff) <= row["not_before"] <= iso(at + backoff * 1.25)
        # Not before then: a run one second earlier does not try again.
        retry_at = datetime.fromisoformat(row["not_before"])
        with freeze_time(retry_at - timedelta(seconds=1)):
            result = invoke(config, "send-due")
        assert result.exit_code == 0, result.output
        assert len(dispatches(db, reminder_id)) == attempt
        at = retry_at

    with freeze_time(at):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    row = reminder_by(db, "T", "day-before", "email")
    assert (row["state"], row["attempts"]) == ("failed", 3)
    assert row["reason"] == (
        "gave up after 3 attempts; last error smtp 451: RCPT TO: 4.3.0 try later"
    )
    records = dispatches(db, reminder_id)
    assert [(d["attempt"], d["outcome"], d["error_code"]) for d in records] == [
        (1, "transient", "smtp 451"),
        (2, "transient", "smtp 451"),
        (3, "transient", "smtp 451"),
    ]
    assert len({d["run_id"] for d in records}) == 3
    assert smtp_server.received == []


def test_connection_refused_puts_the_reminder_back_to_pending_for_the_next_cron_interval(
    tmp_path: Path,
) -> None:
    closed = free_port()  # nothing listens here
    config = write_config(
        tmp_path,
        rules=EMAIL_DAY_BEFORE,
        email_transport="smtp",
        port=closed,
        extra='cron_interval = "10m"',
    )
    db = tmp_path / "reminders.db"
    import_at(
        config,
        write_csv(
            tmp_path / "a.csv", [appt("C", "2027-01-12T18:00", LONDON, email="c@patients.example")]
        ),
        NOW,
    )
    at = utc(2027, 1, 11, 18, 0)
    with freeze_time(at):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    row = reminder_by(db, "C", "day-before", "email")
    assert row["state"] == "pending"
    assert iso(at + 10 * MINUTE) <= row["not_before"] <= iso(at + 12.5 * MINUTE)
    (record,) = dispatches(db, row["id"])
    assert (record["attempt"], record["outcome"], record["error_code"]) == (
        1,
        "transient",
        "connection refused",
    )


def test_a_retry_that_would_land_after_expiry_expires_the_reminder(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = smtp_practice(tmp_path, smtp_server, TWO_HOURS_EMAIL)
    db = tmp_path / "reminders.db"
    smtp_server.handler.replies["late@patients.example"] = RCPT_451
    # 14:00 today: two-hours due 12:00Z, expires 13:00Z. First try at 12:56Z: the earliest
    # retry (12:56 + 5 m = 13:01) is after expiry.
    import_at(
        config,
        write_csv(
            tmp_path / "a.csv",
            [appt("L", "2027-01-11T14:00", LONDON, email="late@patients.example")],
        ),
        NOW - 60 * MINUTE,
    )
    with freeze_time(utc(2027, 1, 11, 12, 56)):
        result = invoke(config, "send-due")
    assert result.exit_code == 1, result.output
    row = reminder_by(db, "L", "two-hours", "email")
    assert (row["state"], row["attempts"]) == ("expired", 1)
    assert row["reason"] == (
        "could not be sent before it expired; last error smtp 451: RCPT TO: 4.3.0 try later"
    )
    assert len(dispatches(db, row["id"])) == 1
    assert stderr_lines(result) == [
        f"reminder {row['id']} (email to l***@patients.example): expired: {row['reason']}"
    ]


# -- reschedules ---------------------------------------------------------------------------


def test_a_moved_appointment_keeps_the_sent_reminder_and_gets_its_own_for_the_new_time(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    rules = EMAIL_DAY_BEFORE + TWO_HOURS_EMAIL
    config = smtp_practice(tmp_path, smtp_server, rules)
    db = tmp_path / "reminders.db"
    first = write_csv(
        tmp_path / "v1.csv", [appt("M", "2027-01-12T15:00", LONDON, email="m@patients.example")]
    )
    import_at(config, first, NOW)
    with freeze_time(utc(2027, 1, 11, 15, 0)):  # the day-before for the old time goes out
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    old = reminder_by(db, "M", "day-before", "email")

    # Moved to Thursday 09:00 (still GMT): day-before due Wed 09:00Z, two-hours Thu 07:00Z.
    moved = write_csv(
        tmp_path / "v2.csv", [appt("M", "2027-01-14T09:00", LONDON, email="m@patients.example")]
    )
    import_at(config, moved, utc(2027, 1, 11, 16, 0))
    rows = query(db, "SELECT * FROM reminders WHERE appointment_id = 'M' ORDER BY id")
    by_start = {(r["starts_at"], r["rule"]): r for r in rows}
    assert {k: (v["state"], v["due_at"]) for k, v in by_start.items()} == {
        ("2027-01-12T15:00:00+00:00", "day-before"): ("sent", "2027-01-11T15:00:00+00:00"),
        ("2027-01-12T15:00:00+00:00", "two-hours"): ("cancelled", "2027-01-12T13:00:00+00:00"),
        ("2027-01-14T09:00:00+00:00", "day-before"): ("pending", "2027-01-13T09:00:00+00:00"),
        ("2027-01-14T09:00:00+00:00", "two-hours"): ("pending", "2027-01-14T07:00:00+00:00"),
    }
    assert by_start[("2027-01-12T15:00:00+00:00", "two-hours")]["reason"] == (
        "the appointment moved to 2027-01-14T09:00:00+00:00"
    )
    kept = by_start[("2027-01-12T15:00:00+00:00", "day-before")]
    assert {k: kept[k] for k in ("id", "provider_id", "updated_at")} == {
        k: old[k] for k in ("id", "provider_id", "updated_at")
    }
    # The old time's cancelled two-hours reminder never goes; the new one does, once.
    with freeze_time(utc(2027, 1, 12, 13, 0)):
        assert invoke(config, "send-due").exit_code == 0
    with freeze_time(utc(2027, 1, 13, 9, 0)):
        assert invoke(config, "send-due").exit_code == 0
    assert [int(m.message["X-Reminder-Id"]) for m in smtp_server.received] == [
        old["id"],
        by_start[("2027-01-14T09:00:00+00:00", "day-before")]["id"],
    ]


def test_reimporting_an_unchanged_file_changes_nothing(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = smtp_practice(tmp_path, smtp_server, BACKLOG_RULES)
    db = tmp_path / "reminders.db"
    csv_path = write_csv(tmp_path / "week.csv", BACKLOG)
    import_at(config, csv_path, IMPORTED)
    with freeze_time(LAST_RUN):
        assert invoke(config, "send-due").exit_code == 0
    before = (query(db, "SELECT * FROM appointments ORDER BY id"), reminders(db))

    with freeze_time(NOW):
        result = invoke(config, "import", str(csv_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Imported {csv_path}: 5 rows, 0 added, 0 updated, 5 unchanged, 0 invalid; "
        "reminders: 0 planned, 0 cancelled, 0 expired when planned\n"
    )
    assert (query(db, "SELECT * FROM appointments ORDER BY id"), reminders(db)) == before


def test_an_appointment_moved_while_its_reminder_is_being_sent_is_reported(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, rules=EMAIL_DAY_BEFORE)
    db = tmp_path / "reminders.db"
    import_at(
        config,
        write_csv(
            tmp_path / "v1.csv", [appt("W", "2027-01-12T15:00", LONDON, email="w@patients.example")]
        ),
        NOW,
    )
    reminder_id = reminder_by(db, "W", "day-before", "email")["id"]
    execute(db, "UPDATE reminders SET state = 'sending' WHERE id = ?", [reminder_id])
    moved = write_csv(
        tmp_path / "v2.csv", [appt("W", "2027-01-12T16:00", LONDON, email="w@patients.example")]
    )
    with freeze_time(NOW + MINUTE):
        result = invoke(config, "import", str(moved))
    assert result.exit_code == 0, result.output
    assert stderr_lines(result) == [
        f"reminder {reminder_id} was being sent when appointment W changed; "
        "`reminder status` shows how it ended"
    ]
    assert query(db, "SELECT state FROM reminders WHERE id = ?", [reminder_id]) == [
        {"state": "sending"}
    ]


def test_reimporting_after_a_rule_is_added_plans_the_new_rules_reminders(tmp_path: Path) -> None:
    config = write_config(tmp_path, rules=EMAIL_DAY_BEFORE)
    db = tmp_path / "reminders.db"
    csv_path = write_csv(
        tmp_path / "a.csv", [appt("NR", "2027-01-14T15:00", LONDON, email="nr@patients.example")]
    )
    import_at(config, csv_path, NOW)
    write_config(tmp_path, rules=EMAIL_DAY_BEFORE + TWO_HOURS_EMAIL)
    import_at(config, csv_path, NOW + MINUTE)
    assert states(db) == {
        ("NR", "day-before", "email"): "pending",
        ("NR", "two-hours", "email"): "pending",
    }
