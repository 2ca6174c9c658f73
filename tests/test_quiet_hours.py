"""Quiet hours (default 21:00-08:00 in the recipient's local time, SMS only, lead 30 minutes)
with recipients in three zones at the same instant, through the CLI with a frozen clock.

Offsets used below, in January 2027: America/Los_Angeles PST = UTC-8, Europe/London GMT =
UTC+0, Asia/Tokyo JST = UTC+9 (no DST). Around the 2027 changes in London: BST = UTC+1 from
2027-03-28 01:00Z until 2027-10-31 01:00Z. A "1d" reminder is due at the same local wall-clock
time the day before; its default lateness limit is 12 hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from tests.conftest import NOW, SmtpServer, invoke, write_config
from tests.rails_support import (
    appt,
    emails_sent,
    reminder_by,
    sms_sent,
    states,
    status_json,
    utc,
    write_csv,
)

LA, LONDON, TOKYO = "America/Los_Angeles", "Europe/London", "Asia/Tokyo"
DAY_BEFORE_BOTH = """\
[[rules]]
name = "day-before"
before = "1d"
channels = ["email", "sms"]
"""
SMS_DAY_BEFORE = '[[rules]]\nname = "day-before"\nbefore = "1d"\nchannels = ["sms"]\n'

# The instant all three are looked at: 2027-01-11 06:00Z (NOW - 6 h) is 22:00 on the 10th in
# Los Angeles (quiet), 06:00 in London (quiet) and 15:00 in Tokyo (not quiet).
INSTANT = utc(2027, 1, 11, 6, 0)
assert utc(2027, 1, 11, 12) - utc(2027, 1, 11, 6) == NOW - INSTANT

THREE_ZONES = [
    # Tokyo, 15:00 on the 12th (06:00Z): due 15:00 JST on the 11th = 06:00Z, expires 18:00Z.
    appt("TYO", "2027-01-12T15:00", TOKYO, email="tyo@patients.example", phone="+819012345678"),
    # Los Angeles, 22:00 on the 11th (06:00Z on the 12th): due 22:00 PST on the 10th = 06:00Z
    # on the 11th, inside quiet hours, so the SMS is planned for 20:30 PST = 04:30Z; both
    # expire 12 h after 06:00Z = 18:00Z. Quiet hours end 08:00 PST = 16:00Z, before that.
    appt("LAX", "2027-01-11T22:00", LA, email="lax@patients.example", phone="+12135550123"),
    # London, 20:00 on the 11th: due 20:00 GMT on the 10th (not quiet), expires 08:00Z on the
    # 11th, exactly when quiet hours end: useless by then.
    appt("LON", "2027-01-11T20:00", LONDON, email="lon@patients.example", phone="+447911123456"),
]


def practice(tmp_path: Path, server: SmtpServer, extra: str = "") -> Path:
    config = write_config(
        tmp_path, rules=DAY_BEFORE_BOTH, email_transport="smtp", port=server.port, extra=extra
    )
    with freeze_time(utc(2027, 1, 10, 12, 0)):  # before anything is due
        result = invoke(config, "import", str(write_csv(tmp_path / "a.csv", THREE_ZONES)))
    assert result.exit_code == 0, result.output
    return config


def test_sms_in_three_zones_at_one_instant_go_wait_for_morning_or_expire(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = practice(tmp_path, smtp_server)
    db = tmp_path / "reminders.db"
    assert reminder_by(db, "LAX", "day-before", "sms")["due_at"] == "2027-01-11T04:30:00+00:00"
    assert reminder_by(db, "LAX", "day-before", "email")["due_at"] == "2027-01-11T06:00:00+00:00"
    assert reminder_by(db, "LAX", "day-before", "sms")["expires_at"] == (
        "2027-01-11T18:00:00+00:00"
    )

    # Cron was down all night; the first run is at the instant.
    with freeze_time(INSTANT):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert states(db) == {
        ("TYO", "day-before", "email"): "sent",
        ("TYO", "day-before", "sms"): "sent",
        ("LAX", "day-before", "email"): "sent",  # quiet hours are for SMS only by default
        ("LAX", "day-before", "sms"): "pending",
        ("LON", "day-before", "email"): "sent",
        ("LON", "day-before", "sms"): "expired",
    }
    waiting = reminder_by(db, "LAX", "day-before", "sms")
    assert (waiting["not_before"], waiting["reason"]) == (
        "2027-01-11T16:00:00+00:00",
        "waiting for quiet hours to end at 08:00 local time",
    )
    gone = reminder_by(db, "LON", "day-before", "sms")
    assert gone["reason"] == (
        "due in quiet hours; they end at 08:00 local time, after it stops being useful"
    )
    assert [to for _, to in sms_sent(tmp_path / "outbox")] == ["+819012345678"]
    with freeze_time(INSTANT):
        status = status_json(config)
    assert (status["due_now"], status["next_due_at"]) == (0, "2027-01-11T16:00:00+00:00")
    assert [(e["appointment_id"], e["channel"], e["reason"]) for e in status["expired"]] == [
        ("LON", "sms", gone["reason"])
    ]

    # One second before quiet hours end in Los Angeles nothing goes; at 08:00 PST it does.
    with freeze_time(utc(2027, 1, 11, 15, 59, 59)):
        assert invoke(config, "send-due").exit_code == 0
    assert len(sms_sent(tmp_path / "outbox")) == 1
    with freeze_time(utc(2027, 1, 11, 16, 0)):
        assert invoke(config, "send-due").exit_code == 0
    assert [to for _, to in sms_sent(tmp_path / "outbox")] == ["+819012345678", "+12135550123"]
    assert sorted(to for _, to in emails_sent(smtp_server)) == [
        "lax@patients.example",
        "lon@patients.example",
        "tyo@patients.example",
    ]


def test_quiet_hours_apply_to_email_when_configured(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = practice(tmp_path, smtp_server, extra='\n[quiet_hours]\nchannels = ["sms", "email"]')
    db = tmp_path / "reminders.db"
    # Planned like the SMS now: 20:30 PST on the 10th.
    assert reminder_by(db, "LAX", "day-before", "email")["due_at"] == "2027-01-11T04:30:00+00:00"
    with freeze_time(INSTANT):
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.output
    assert {k: v for k, v in states(db).items() if k[2] == "email"} == {
        ("TYO", "day-before", "email"): "sent",
        ("LAX", "day-before", "email"): "pending",
        ("LON", "day-before", "email"): "expired",
    }
    assert reminder_by(db, "LAX", "day-before", "email")["not_before"] == (
        "2027-01-11T16:00:00+00:00"
    )
    assert emails_sent(smtp_server) == [
        (reminder_by(db, "TYO", "day-before", "email")["id"], "tyo@patients.example")
    ]


def test_configured_quiet_hours_and_lead_are_used(tmp_path: Path, smtp_server: SmtpServer) -> None:
    # 22:00-07:00 with a 1 h lead: the LA SMS due 22:00 PST moves to 21:00 PST = 05:00Z; at the
    # instant (22:00 PST) it waits until 07:00 PST = 15:00Z; London (06:00 GMT) is quiet until
    # 07:00Z, before its 08:00Z expiry, so it now waits instead of expiring.
    extra = '\n[quiet_hours]\nstart = "22:00"\nend = "07:00"\nlead = "1h"'
    config = practice(tmp_path, smtp_server, extra=extra)
    db = tmp_path / "reminders.db"
    assert reminder_by(db, "LAX", "day-before", "sms")["due_at"] == "2027-01-11T05:00:00+00:00"
    with freeze_time(INSTANT):
        assert invoke(config, "send-due").exit_code == 0
    assert reminder_by(db, "LAX", "day-before", "sms")["not_before"] == (
        "2027-01-11T15:00:00+00:00"
    )
    assert reminder_by(db, "LON", "day-before", "sms")["not_before"] == (
        "2027-01-11T07:00:00+00:00"
    )
    assert reminder_by(db, "LON", "day-before", "sms")["state"] == "pending"


def test_planner_moves_a_due_time_inside_quiet_hours_to_30_minutes_before_they_begin(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, rules=DAY_BEFORE_BOTH)
    db = tmp_path / "reminders.db"
    rows = [
        # due 07:00 PST on the 11th (quiet since 21:00 PST on the 10th = 05:00Z on the 11th)
        # -> SMS 20:30 PST on the 10th = 04:30Z on the 11th; email stays 15:00Z.
        appt("LA7", "2027-01-12T07:00", LA, email="la7@patients.example", phone="+12135550123"),
        # due 23:00 GMT on the 11th -> 20:30Z on the 11th.
        appt("LN23", "2027-01-12T23:00", LONDON, phone="+447911123456"),
        # due exactly 21:00 JST on the 11th: quiet hours include their start -> 20:30 JST = 11:30Z
        appt("TY21", "2027-01-12T21:00", TOKYO, phone="+819012345678"),
        # due exactly 08:00 JST on the 11th: they have ended -> stays 23:00Z on the 10th.
        appt("TY08", "2027-01-12T08:00", TOKYO, phone="+819012345679"),
        # due 20:59 GMT: 31 minutes before they begin -> stays.
        appt("LN2059", "2027-01-12T20:59", LONDON, phone="+447911123457"),
    ]
    with freeze_time(NOW - timedelta(days=1)):  # 12:00Z on the 10th, before any is due
        result = invoke(config, "import", str(write_csv(tmp_path / "a.csv", rows)))
    assert result.exit_code == 0, result.output

    def plan(appointment: str, channel: str = "sms") -> tuple[str, str]:
        row = reminder_by(db, appointment, "day-before", channel)
        return row["due_at"], row["expires_at"]

    # The due time moves; the lateness limit stays 12 h after the rule's own due time.
    assert plan("LA7") == ("2027-01-11T04:30:00+00:00", "2027-01-12T03:00:00+00:00")
    assert plan("LA7", "email") == ("2027-01-11T15:00:00+00:00", "2027-01-12T03:00:00+00:00")
    assert plan("LN23") == ("2027-01-11T20:30:00+00:00", "2027-01-12T11:00:00+00:00")
    assert plan("TY21") == ("2027-01-11T11:30:00+00:00", "2027-01-12T00:00:00+00:00")
    assert plan("TY08") == ("2027-01-10T23:00:00+00:00", "2027-01-11T11:00:00+00:00")
    assert plan("LN2059") == ("2027-01-11T20:59:00+00:00", "2027-01-12T08:59:00+00:00")

    # `show` gives the real (moved) due time.
    reminder_id = reminder_by(db, "LA7", "day-before", "sms")["id"]
    result = invoke(config, "show", str(reminder_id))
    assert result.exit_code == 0, result.output
    assert (
        # 04:30Z and 03:00Z in Los Angeles (UTC-8 in January)
        "  plan: due Jan 10 20:30 PST, useful until Jan 11 19:00 PST, "
        "next attempt not before Jan 10 20:30 PST, attempts 0"
    ) in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("starts_at", "run_at", "quiet_end"),
    [
        # Spring forward: quiet from 21:00 GMT on 27 March (21:00Z) to 08:00 BST on the 28th,
        # which is 07:00Z. 1d due 07:30 BST on the 28th = 06:30Z; found due then, it waits
        # until 07:00Z (not 08:00Z: the night was an hour shorter).
        ("2027-03-29T07:30", utc(2027, 3, 28, 6, 30), "2027-03-28T07:00:00+00:00"),
        # Fall back: quiet from 21:00 BST on 30 October (20:00Z) to 08:00 GMT on the 31st =
        # 08:00Z. 1d due 07:30 GMT on the 31st = 07:30Z; it waits until 08:00Z.
        ("2027-11-01T07:30", utc(2027, 10, 31, 7, 30), "2027-10-31T08:00:00+00:00"),
    ],
)
def test_quiet_hours_end_at_the_local_morning_across_a_dst_change(
    tmp_path: Path, starts_at: str, run_at: datetime, quiet_end: str
) -> None:
    config = write_config(tmp_path, rules=SMS_DAY_BEFORE)
    db = tmp_path / "reminders.db"
    with freeze_time(NOW):
        result = invoke(
            config,
            "import",
            str(
                write_csv(
                    tmp_path / "a.csv", [appt("DST", starts_at, LONDON, phone="+447911123456")]
                )
            ),
        )
    assert result.exit_code == 0, result.output
    with freeze_time(run_at):
        assert invoke(config, "send-due").exit_code == 0
    row = reminder_by(db, "DST", "day-before", "sms")
    assert (row["state"], row["not_before"], row["reason"]) == (
        "pending",
        quiet_end,
        "waiting for quiet hours to end at 08:00 local time",
    )
    assert sms_sent(tmp_path / "outbox") == []
