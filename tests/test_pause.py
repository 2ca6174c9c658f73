"""`reminder pause` / `reminder resume`: a kill switch kept in the journal.

Monday 2027-01-11, America/Chicago (UTC-6), appointments on Tuesday:
Avery (email and mobile) at 09:00 CST, so both reminders are due Monday 15:00 UTC;
Cam (mobile only) at 10:15 CST, due 16:15 UTC. A day-before reminder stays useful 12 hours.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.admin_support import (
    at,
    reminder_id,
    sms_in_outbox,
    state_of,
    status_json,
    utc,
    write_csv,
)
from tests.conftest import SmtpServer, write_config

AVERY_EMAIL, AVERY_PHONE, CAM_PHONE = "avery@patients.example", "+13125550142", "+13125550177"
ROWS = [
    {"appointment_id": "P-1", "name": "Avery Lindqvist", "email": AVERY_EMAIL,
     "phone": "(312) 555-0142", "starts_at": "2027-01-12T09:00"},
    {"appointment_id": "P-2", "name": "Cam Ferreira", "phone": "312.555.0177",
     "starts_at": "2027-01-12T10:15"},
]  # fmt: skip
REASON = "SMS provider double-sending; investigating"
MARIA = {"USER": "maria", "SUDO_USER": None}


@pytest.fixture
def practice(tmp_path: Path, smtp_server: SmtpServer) -> Path:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    result = at(utc(2027, 1, 11, 12), config, "import", str(write_csv(tmp_path / "p.csv", ROWS)))
    assert result.exit_code == 0, result.stderr
    return config


def texted(config: Path) -> list[str]:
    return sorted(s["to"] for s in sms_in_outbox(config))


def test_paused_sms_sends_no_text_while_email_still_goes_out(
    practice: Path, smtp_server: SmtpServer
) -> None:
    paused = at(utc(2027, 1, 11, 14), practice, "pause", "--channel", "sms", "--reason", REASON,
                **MARIA)  # fmt: skip
    assert paused.exit_code == 0, paused.stderr
    assert "sms" in paused.stdout and "reminder resume" in paused.stdout

    for instant in (utc(2027, 1, 11, 15, 0), utc(2027, 1, 11, 16, 15)):
        result = at(instant, practice, "send-due")
        assert result.exit_code == 0, result.stderr
        assert (result.stdout, result.stderr) == ("", "")
    assert smtp_server.recipients() == [AVERY_EMAIL]
    assert texted(practice) == []
    for phone in (AVERY_PHONE, CAM_PHONE):
        assert state_of(practice, reminder_id(practice, "sms", phone)) == "pending"


def test_status_shows_the_pause_first_with_who_when_and_why(practice: Path) -> None:
    assert at(utc(2027, 1, 11, 14), practice, "pause", "--channel", "sms", "--reason", REASON,
              **MARIA).exit_code == 0  # fmt: skip
    assert at(utc(2027, 1, 11, 15), practice, "send-due").exit_code == 0

    plain = at(utc(2027, 1, 11, 15, 1), practice, "status")
    assert plain.exit_code == 0, plain.stderr
    first = plain.stdout.splitlines()[0]
    assert "paused" in first and "sms" in first
    assert "maria" in first and "2027-01-11T14:00:00+00:00" in first and REASON in first
    [line] = [x for x in plain.stdout.splitlines() if x.startswith("paused ")]
    assert line == f"paused channel=sms by=maria since=2027-01-11T14:00:00+00:00 reason={REASON}"

    status = status_json(utc(2027, 1, 11, 15, 1), practice)
    assert status["paused"] == [
        {"channel": "sms", "by": "maria", "since": "2027-01-11T14:00:00+00:00", "reason": REASON}
    ]
    assert status["counts"]["pending"] == 2 and status["due_now"] == 1  # Avery's text waits

    check = at(utc(2027, 1, 11, 15, 1), practice, "status", "--check")
    assert check.exit_code == 1
    assert check.stdout.startswith("REMINDERS WARNING: ")
    assert "paused (sms)" in check.stdout and "maria" in check.stdout


def test_resume_lets_the_next_send_due_send_what_is_due(practice: Path) -> None:
    assert at(utc(2027, 1, 11, 14), practice, "pause", "--channel", "sms", "--reason", REASON,
              **MARIA).exit_code == 0  # fmt: skip
    assert at(utc(2027, 1, 11, 15), practice, "send-due").exit_code == 0
    assert at(utc(2027, 1, 11, 16, 15), practice, "send-due").exit_code == 0
    assert texted(practice) == []

    resumed = at(utc(2027, 1, 11, 16, 20), practice, "resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout == "Resumed.\n"
    result = at(utc(2027, 1, 11, 16, 25), practice, "send-due")
    assert result.exit_code == 0, result.stderr
    assert texted(practice) == [AVERY_PHONE, CAM_PHONE]  # still useful: due < 12 h ago

    status = status_json(utc(2027, 1, 11, 16, 26), practice)
    assert status["paused"] == []
    assert status["counts"]["sent"] == 3 and status["counts"]["pending"] == 0
    check = at(utc(2027, 1, 11, 16, 26), practice, "status", "--check")
    assert check.exit_code == 0, check.stdout


def test_pausing_everything_sends_nothing_and_resume_sends_it_all(
    practice: Path, smtp_server: SmtpServer
) -> None:
    assert at(utc(2027, 1, 11, 14), practice, "pause", "--reason", "clinic closed by snow",
              **MARIA).exit_code == 0  # fmt: skip
    result = at(utc(2027, 1, 11, 16, 15), practice, "send-due")
    assert result.exit_code == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")  # cron mails nothing
    assert smtp_server.received == [] and texted(practice) == []
    assert status_json(utc(2027, 1, 11, 16, 16), practice)["paused"][0]["channel"] == "all"

    assert at(utc(2027, 1, 11, 16, 20), practice, "resume").exit_code == 0
    assert at(utc(2027, 1, 11, 16, 25), practice, "send-due").exit_code == 0
    assert smtp_server.recipients() == [AVERY_EMAIL]
    assert texted(practice) == [AVERY_PHONE, CAM_PHONE]


def test_resume_of_one_channel_keeps_the_other_paused(practice: Path) -> None:
    for channel in ("sms", "email"):
        assert at(utc(2027, 1, 11, 14), practice, "pause", "--channel", channel, "--reason", "x",
                  **MARIA).exit_code == 0  # fmt: skip
    assert at(utc(2027, 1, 11, 14, 5), practice, "resume", "--channel", "sms").exit_code == 0
    status = status_json(utc(2027, 1, 11, 14, 6), practice)
    assert [p["channel"] for p in status["paused"]] == ["email"]


def test_resume_when_nothing_is_paused_says_so(practice: Path) -> None:
    result = at(utc(2027, 1, 11, 14), practice, "resume")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Nothing was paused.\n"


def test_pause_needs_a_reason(practice: Path) -> None:
    result = at(utc(2027, 1, 11, 14), practice, "pause", "--channel", "sms")
    assert result.exit_code == 2
    assert "--reason" in result.stderr
    assert status_json(utc(2027, 1, 11, 14), practice)["paused"] == []


def test_pause_is_kept_in_the_journal_for_every_later_run(practice: Path) -> None:
    assert at(utc(2027, 1, 11, 14), practice, "pause", "--channel", "sms", "--reason", REASON,
              **MARIA).exit_code == 0  # fmt: skip
    for minute in range(0, 30, 5):
        assert at(utc(2027, 1, 11, 16, 15 + minute), practice, "send-due").exit_code == 0
    assert texted(practice) == []
    status = status_json(utc(2027, 1, 11, 16, 45), practice)
    assert json.dumps(status["paused"]).count(REASON) == 1


def test_replay_on_a_paused_channel_says_it_is_paused_instead_of_sending_nothing_silently(
    practice: Path,
) -> None:
    assert at(utc(2027, 1, 11, 15), practice, "send-due").exit_code == 0
    avery = reminder_id(practice, "sms", AVERY_PHONE)
    assert state_of(practice, avery) == "sent"
    assert at(utc(2027, 1, 11, 15, 30), practice, "pause", "--channel", "sms", "--reason", REASON,
              **MARIA).exit_code == 0  # fmt: skip
    result = at(utc(2027, 1, 11, 16), practice, "replay", str(avery), "--force", "--yes",
                "--reason", "patient asks again", **MARIA)  # fmt: skip
    assert len(sms_in_outbox(practice)) == 1  # nothing was sent: the channel is paused
    assert "paused" in result.stdout + result.stderr
