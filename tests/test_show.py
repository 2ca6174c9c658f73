"""`reminder show`: what happened to this patient's reminder, by reminder id, appointment id
or recipient.

Monday 2027-01-11, America/Chicago (UTC-6). Avery (S-1: email and mobile) and Fay (S-2: an
address the real SMTP server refuses with 550) have appointments on Tuesday at 09:00 and
08:00 CST, so their day-before reminders are due Monday 15:00 and 14:00 UTC; one send-due
runs at 15:00 UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.admin_support import at, query, reminder_id, utc, write_csv
from tests.conftest import Handler, free_port, write_config

AVERY_EMAIL, AVERY_PHONE, FAY = "avery@patients.example", "+13125550142", "fay@patients.example"
ROWS = [
    {"appointment_id": "S-1", "name": "Avery Lindqvist", "email": AVERY_EMAIL,
     "phone": "(312) 555-0142", "starts_at": "2027-01-12T09:00"},
    {"appointment_id": "S-2", "name": "Fay Nobody", "email": FAY,
     "starts_at": "2027-01-12T08:00"},
]  # fmt: skip
LATER = utc(2027, 1, 11, 16)


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Built once: every test here only reads it."""
    handler = Handler(replies={FAY: "550 5.1.1 <fay@patients.example>: mailbox does not exist"})
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    directory = tmp_path_factory.mktemp("show")
    try:
        config = write_config(directory, email_transport="smtp", port=port)
        csv_path = write_csv(directory / "s.csv", ROWS)
        result = at(utc(2027, 1, 11, 12), config, "import", str(csv_path))
        assert result.exit_code == 0, result.stderr
        assert at(utc(2027, 1, 11, 15), config, "send-due").exit_code == 1
        assert [r for m in handler.received for r in m.rcpt_tos] == [AVERY_EMAIL]
        yield config
    finally:
        controller.stop()


def reminders_shown(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("Reminder ")]


def test_show_tells_the_appointment_the_plan_and_the_failed_attempt_with_its_error(
    practice: Path,
) -> None:
    fay = reminder_id(practice, "email", FAY)
    result = at(LATER, practice, "show", str(fay))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Reminder {fay}: email to {FAY}, rule day-before, state failed")
    assert "mailbox does not exist" in lines[0]
    [appointment] = [x for x in lines if x.strip().startswith("appointment S-2")]
    assert "Fay Nobody" in appointment and "America/Chicago" in appointment
    [plan] = [x for x in lines if x.strip().startswith("plan:")]
    # Times as the practice reads them: Chicago is UTC-6 in January.
    assert "due Jan 11 08:00 CST" in plan  # 14:00Z
    assert "useful until Jan 11 20:00 CST" in plan  # 12 hours after it was due, 02:00Z
    [attempt] = [x for x in lines if x.strip().startswith("attempt 1:")]
    assert "Jan 11 09:00 CST" in attempt  # claimed by the 15:00Z run
    assert "smtp 550" in attempt and "mailbox does not exist" in attempt
    assert "replay requested" not in result.stdout


def test_show_gives_the_provider_id_of_a_sent_sms(practice: Path) -> None:
    sms = reminder_id(practice, "sms", AVERY_PHONE)
    result = at(LATER, practice, "show", str(sms))
    assert result.exit_code == 0, result.stderr
    [outbox_file] = [p.name for p in (practice.parent / "outbox").glob("*.json")]
    [attempt] = [x for x in result.stdout.splitlines() if x.strip().startswith("attempt 1:")]
    assert ", sent, provider id " in attempt and outbox_file in attempt


def test_show_by_appointment_lists_every_reminder_of_that_appointment(practice: Path) -> None:
    result = at(LATER, practice, "show", "--appointment", "S-1")
    assert result.exit_code == 0, result.stderr
    ids = [r["id"] for r in query(practice, "SELECT id FROM reminders WHERE appointment_id = 'S-1'"
                                  " ORDER BY id")]  # fmt: skip
    shown = reminders_shown(result.stdout)
    assert [int(line.split()[1].rstrip(":")) for line in shown] == ids
    assert {line.split()[2] for line in shown} == {"email", "sms"}
    assert all("state sent" in line for line in shown)


@pytest.mark.parametrize("written", ["(312) 555-0142", "312.555.0142", "+1 312 555 0142"])
def test_show_by_recipient_normalises_a_phone_written_in_a_local_format(
    practice: Path, written: str
) -> None:
    result = at(LATER, practice, "show", "--recipient", written)
    assert result.exit_code == 0, result.stderr
    [shown] = reminders_shown(result.stdout)
    assert shown.startswith(f"Reminder {reminder_id(practice, 'sms', AVERY_PHONE)}: sms to ")
    assert AVERY_PHONE in shown


def test_show_by_recipient_finds_an_email_whatever_its_case(practice: Path) -> None:
    result = at(LATER, practice, "show", "--recipient", "Avery@Patients.EXAMPLE")
    assert result.exit_code == 0, result.stderr
    [shown] = reminders_shown(result.stdout)
    assert f"email to {AVERY_EMAIL}" in shown


def test_show_of_an_unknown_id_says_none_matches_with_exit_2(practice: Path) -> None:
    result = at(LATER, practice, "show", "999")
    assert result.exit_code == 2
    assert "no reminder matches" in result.stderr and "reminder status" in result.stderr


def test_show_without_an_id_or_option_is_a_usage_error(practice: Path) -> None:
    result = at(LATER, practice, "show")
    assert result.exit_code == 2
    assert "--appointment" in result.stderr and "--recipient" in result.stderr


def test_show_refuses_a_recipient_that_is_no_phone_number(practice: Path) -> None:
    result = at(LATER, practice, "show", "--recipient", "555")
    assert result.exit_code == 2
    assert "--recipient" in result.stderr


def test_show_gives_the_appointment_time_as_the_patient_knows_it(practice: Path) -> None:
    result = at(LATER, practice, "show", "--appointment", "S-1")
    assert result.exit_code == 0, result.stderr
    appointment = next(x for x in result.stdout.splitlines() if "appointment S-1" in x)
    assert "09:00" in appointment
