"""The sample week end to end: import the fixture CSV, run `send-due` through the CLI at chosen
instants against a real SMTP server (aiosmtpd on 127.0.0.1) and the SMS outbox, and check who got
what, when, and what the journal says afterwards.

Every expected due time and local time below was worked out by hand from the fixture:
a "1d" rule is due at the same local wall-clock time one calendar day earlier in the row's zone.
In January America/Chicago is UTC-6, America/New_York UTC-5 and Pacific/Auckland UTC+13.
2027-01-11 is a Monday.
"""

from __future__ import annotations

import email
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from freezegun import freeze_time

from tests.conftest import (
    FIXTURES,
    NOW,
    Handler,
    Received,
    SmtpServer,
    invoke,
    serving,
    write_config,
)

SAMPLE = FIXTURES / "appointments-sample.csv"
STATES = ("pending", "sending", "sent", "failed", "unknown", "cancelled", "expired", "suppressed")
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
SENDER_ADDRESS = "reminders@clinic.example"
SMS_FROM = "+13125550100"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@dataclass(frozen=True)
class Appt:
    """One fixture row as the patient should experience it."""

    name: str
    email: str | None
    phone: str | None  # E.164
    date: str  # local date as a person writes it
    time: str  # local time, 12-hour clock
    zone: str  # the zone's abbreviation on that date
    due: datetime  # UTC


TUE, WED, THU = (
    "Tuesday, January 12, 2027",
    "Wednesday, January 13, 2027",
    "Thursday, January 14, 2027",
)

# SMS say the date the short way, to stay within two segments even for accented names.
SHORT_DATE = {TUE: "Tue, Jan 12", WED: "Wed, Jan 13", THU: "Thu, Jan 14"}

APPTS: dict[str, Appt] = {
    # 09:00 CST on the 12th -> due 09:00 CST on the 11th = 15:00Z
    "MS-1001": Appt("Avery Lindqvist", "avery.lindqvist@patients.example", "+13125550142",
                    TUE, "9:00 AM", "CST", utc(2027, 1, 11, 15, 0)),
    "MS-1002": Appt("Brook Tanaka", "brook.t@patients.example", None,
                    TUE, "9:30 AM", "CST", utc(2027, 1, 11, 15, 30)),
    # empty timezone column: the practice's zone (Chicago)
    "MS-1003": Appt("Cam Ferreira", None, "+13125550177",
                    TUE, "10:15 AM", "CST", utc(2027, 1, 11, 16, 15)),
    # given with an explicit -06:00 offset
    "MS-1004": Appt("Dana O'Connell", "dana.oconnell@patients.example", "+13125550190",
                    TUE, "11:00 AM", "CST", utc(2027, 1, 11, 17, 0)),
    "MS-1006": Appt("Fatima Al-Sayed", "fatima.alsayed@patients.example", "+13125550123",
                    TUE, "3:00 PM", "CST", utc(2027, 1, 11, 21, 0)),
    "MS-1007": Appt("Gus Halvorsen", "gus.h@patients.example", "+13125550166",
                    WED, "8:00 AM", "CST", utc(2027, 1, 12, 14, 0)),
    # New York, UTC-5: 16:30 EST on the 13th -> 21:30Z on the 12th
    "MS-1008": Appt("Hana Kowalczyk", "hana.k@patients.example", None,
                    WED, "4:30 PM", "EST", utc(2027, 1, 12, 21, 30)),
    "MS-1009": Appt('Ines "Nessa" Mbeki', "ines.mbeki@patients.example", "+12125550148",
                    WED, "5:00 PM", "EST", utc(2027, 1, 12, 22, 0)),
    "MS-1010": Appt("Jonah Weiss", "jonah.weiss@patients.example", "+13125550109",
                    THU, "7:30 AM", "CST", utc(2027, 1, 13, 13, 30)),
    # Auckland, UTC+13: 12:00 NZDT on the 14th -> due 12:00 NZDT on the 13th = 23:00Z on the 12th
    "MS-1011": Appt("Kiri Te Ao", "kiri.teao@patients.example", None,
                    THU, "12:00 PM", "NZDT", utc(2027, 1, 12, 23, 0)),
    "MS-1012": Appt("Lúcia Gonçalves", "lucia.g@patients.example", "+13125550135",
                    THU, "2:00 PM", "CST", utc(2027, 1, 13, 20, 0)),
}  # fmt: skip
CANCELLED_EMAIL, CANCELLED_PHONE = "emile.durand@patients.example", "+13125550111"  # MS-1005
TOTAL_REMINDERS = sum((a.email is not None) + (a.phone is not None) for a in APPTS.values())

# (instant of a cron run, appointments whose email / SMS reminder became due since the run before).
# Jonah Weiss's SMS (MS-1010) would be due at 07:30 CST, inside the default quiet hours
# (21:00-08:00 local, SMS only), so it is planned 30 minutes before they begin the evening
# before: 20:30 CST on the 12th = 02:30Z on the 13th. His email stays at 07:30 CST = 13:30Z.
RUNS: list[tuple[datetime, set[str], set[str]]] = [
    (utc(2027, 1, 11, 15, 5), {"MS-1001"}, {"MS-1001"}),
    (utc(2027, 1, 11, 16, 20), {"MS-1002"}, {"MS-1003"}),
    (utc(2027, 1, 11, 16, 59, 59), set(), set()),  # one second before MS-1004 is due
    (utc(2027, 1, 11, 17, 0), {"MS-1004"}, {"MS-1004"}),  # exactly at its due instant
    (utc(2027, 1, 11, 21, 0), {"MS-1006"}, {"MS-1006"}),
    (utc(2027, 1, 12, 14, 0), {"MS-1007"}, {"MS-1007"}),
    (utc(2027, 1, 12, 23, 0), {"MS-1008", "MS-1009", "MS-1011"}, {"MS-1009"}),
    (utc(2027, 1, 13, 2, 29, 59), set(), set()),
    (utc(2027, 1, 13, 2, 30), set(), {"MS-1010"}),
    (utc(2027, 1, 13, 20, 0), {"MS-1010", "MS-1012"}, {"MS-1012"}),
]
SMS_DUE = {a: utc(2027, 1, 13, 2, 30) if a == "MS-1010" else appt.due for a, appt in APPTS.items()}
RERUNS = [utc(2027, 1, 13, 20, 0), utc(2027, 1, 13, 20, 5), utc(2027, 1, 20, 12, 0)]


def sms_files(outbox: Path) -> set[Path]:
    return set(outbox.glob("*.json")) if outbox.is_dir() else set()


def header(message: email.message.Message, name: str) -> str:
    return " ".join(str(message[name]).split())


@dataclass
class Run:
    instant: datetime
    result: Result
    emails: list[Received]
    sms: list[dict[str, Any]]
    status: dict[str, Any]


@dataclass
class Week:
    directory: Path
    imported: Result
    status_after_import: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    reruns: list[Run] = field(default_factory=list)

    @property
    def emails(self) -> list[Received]:
        return [m for run in self.runs + self.reruns for m in run.emails]

    @property
    def sms(self) -> list[dict[str, Any]]:
        return [s for run in self.runs + self.reruns for s in run.sms]


def run_send_due(config: Path, server: SmtpServer, instant: datetime) -> Run:
    outbox = config.parent / "outbox"
    mail_before, sms_before = len(server.received), sms_files(outbox)
    with freeze_time(instant):
        result = invoke(config, "send-due")
        status = invoke(config, "status", "--json")
    assert status.exit_code == 0, status.stderr
    new_sms = [json.loads(p.read_text("utf-8")) for p in sorted(sms_files(outbox) - sms_before)]
    return Run(instant, result, server.received[mail_before:], new_sms, json.loads(status.stdout))


@pytest.fixture(scope="module")
def module_smtp_server() -> Iterator[SmtpServer]:
    with serving(Handler()) as server:
        yield server


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory, module_smtp_server: SmtpServer) -> Week:
    """The sample CSV imported at NOW, then every cron run of RUNS and RERUNS, recorded."""
    directory = tmp_path_factory.mktemp("week")
    config = write_config(directory, email_transport="smtp", port=module_smtp_server.port)
    with freeze_time(NOW):
        imported = invoke(config, "import", str(SAMPLE))
        status = invoke(config, "status", "--json")
    week = Week(directory, imported, json.loads(status.stdout))
    week.runs = [run_send_due(config, module_smtp_server, instant) for instant, _, _ in RUNS]
    week.reruns = [run_send_due(config, module_smtp_server, instant) for instant in RERUNS]
    return week


def test_import_of_the_sample_plans_one_pending_reminder_per_rule_and_contact(week: Week) -> None:
    assert week.imported.exit_code == 0, week.imported.stderr
    assert week.imported.stderr == ""
    status = week.status_after_import
    assert set(status["counts"]) == set(STATES)
    assert status["counts"] == {s: (TOTAL_REMINDERS if s == "pending" else 0) for s in STATES}
    assert TOTAL_REMINDERS == 18
    assert status["due_now"] == 0
    assert status["next_due_at"] == "2027-01-11T15:00:00+00:00"
    assert status["last_run"] is None


def test_send_due_exits_zero_and_prints_nothing_at_every_cron_run(week: Week) -> None:
    for run in week.runs + week.reruns:
        assert run.result.exit_code == 0, (run.instant, run.result.stderr)
        assert run.result.stdout == "", run.instant
        assert run.result.stderr == "", run.instant


def test_send_due_emails_exactly_the_patients_whose_reminders_became_due(week: Week) -> None:
    for run, (instant, due, _) in zip(week.runs, RUNS, strict=True):
        assert run.instant == instant
        expected = sorted(APPTS[a].email or "" for a in due)
        assert sorted(r for m in run.emails for r in m.rcpt_tos) == expected, instant
        assert [m.message["To"] for m in run.emails] == [r for m in run.emails for r in m.rcpt_tos]


def test_send_due_texts_exactly_the_phones_whose_reminders_became_due(week: Week) -> None:
    for run, (instant, _, due) in zip(week.runs, RUNS, strict=True):
        expected = sorted(APPTS[a].phone or "" for a in due)
        assert sorted(s["to"] for s in run.sms) == expected, instant


def test_status_after_each_run_names_the_next_due_reminder(week: Week) -> None:
    dues = [a.due for a in APPTS.values() if a.email] + [
        SMS_DUE[i] for i, a in APPTS.items() if a.phone
    ]
    for run in week.runs:
        later = [d for d in dues if d > run.instant]
        expected = min(later).isoformat() if later else None
        assert run.status["next_due_at"] == expected, run.instant
        assert run.status["due_now"] == 0, run.instant


def test_every_email_comes_from_the_practice_by_smtp_and_no_email_lands_in_the_outbox(
    week: Week,
) -> None:
    assert len(week.emails) == sum(1 for a in APPTS.values() if a.email)
    for received in week.emails:
        assert received.mail_from == SENDER_ADDRESS
        assert header(received.message, "From") == (
            "Maple Street Clinic <reminders@clinic.example>"
        )
    assert list((week.directory / "outbox").glob("*.eml")) == []


@pytest.mark.parametrize("appointment", [a for a, appt in APPTS.items() if appt.email])
def test_email_reminder_states_the_appointment_in_the_patients_local_time(
    week: Week, appointment: str
) -> None:
    appt = APPTS[appointment]
    [received] = [m for m in week.emails if m.rcpt_tos == [appt.email]]
    assert f"Hello {appt.name}," in received.text
    assert f"{appt.date} at {appt.time} ({appt.zone})" in received.text
    assert header(received.message, "Subject") == (
        f"Reminder: your appointment on {appt.date} at {appt.time}"
    )


@pytest.mark.parametrize("appointment", [a for a, appt in APPTS.items() if appt.phone])
def test_sms_reminder_is_a_json_outbox_file_with_the_local_time(
    week: Week, appointment: str
) -> None:
    appt = APPTS[appointment]
    [sms] = [s for s in week.sms if s["to"] == appt.phone]
    assert {"to", "from", "body", "reminder_id"} <= set(sms)
    assert E164.match(sms["to"])
    assert sms["from"] == SMS_FROM
    assert isinstance(sms["reminder_id"], int)
    assert f"{SHORT_DATE[appt.date]} at {appt.time} {appt.zone}" in sms["body"]
    assert appt.name in sms["body"]


def test_sms_outbox_files_are_named_json_and_hold_only_e164_numbers(week: Week) -> None:
    files = sorted((week.directory / "outbox").glob("*.json"))
    assert len(files) == sum(1 for a in APPTS.values() if a.phone)
    for path in files:
        record = json.loads(path.read_text("utf-8"))
        assert E164.match(record["to"]), path.name
        assert E164.match(record["from"]), path.name
    ids = [json.loads(p.read_text("utf-8"))["reminder_id"] for p in files]
    assert len(set(ids)) == len(ids)


def test_cancelled_appointment_gets_no_reminder_at_all(week: Week) -> None:
    assert CANCELLED_EMAIL not in [r for m in week.emails for r in m.rcpt_tos]
    assert CANCELLED_PHONE not in [s["to"] for s in week.sms]
    assert all("Émile" not in m.text for m in week.emails)
    assert all("Émile" not in s["body"] for s in week.sms)


def test_appointment_without_email_gets_only_an_sms(week: Week) -> None:
    cam = APPTS["MS-1003"]
    assert [m for m in week.emails if cam.name in m.text] == []
    assert [s["to"] for s in week.sms if cam.name in s["body"]] == [cam.phone]


def test_send_due_never_resends_once_everything_was_sent(week: Week) -> None:
    for run in week.reruns:
        assert run.result.exit_code == 0, run.result.stderr
        assert run.emails == [], run.instant
        assert run.sms == [], run.instant
    recipients = [r for m in week.emails for r in m.rcpt_tos] + [s["to"] for s in week.sms]
    assert len(recipients) == len(set(recipients)) == TOTAL_REMINDERS


def test_every_email_has_a_well_formed_message_id_unique_to_its_reminder(week: Week) -> None:
    ids = [header(m.message, "Message-ID") for m in week.emails]
    for message_id in ids:
        assert re.fullmatch(r"<[^<>@\s]+@clinic\.example>", message_id), message_id
    assert len(set(ids)) == len(ids)


def test_message_id_of_a_reminder_does_not_depend_on_when_it_is_sent(
    week: Week, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    with freeze_time(NOW):
        assert invoke(config, "import", str(SAMPLE)).exit_code == 0
    with freeze_time("2027-01-11T15:47:13Z"):  # later than the week's run, same reminders due
        result = invoke(config, "send-due")
    assert result.exit_code == 0, result.stderr
    avery = APPTS["MS-1001"].email
    [again] = [m for m in smtp_server.received if m.rcpt_tos == [avery]]
    [first] = [m for m in week.emails if m.rcpt_tos == [avery]]
    assert header(again.message, "Message-ID") == header(first.message, "Message-ID")


def test_status_json_after_the_first_run_counts_two_sent_and_names_the_next_due_time(
    week: Week,
) -> None:
    status = week.runs[0].status
    assert set(status["counts"]) == set(STATES)
    assert status["counts"]["sent"] == 2
    assert status["counts"]["pending"] == TOTAL_REMINDERS - 2
    assert sum(status["counts"].values()) == TOTAL_REMINDERS
    assert status["due_now"] == 0
    assert status["next_due_at"] == "2027-01-11T15:30:00+00:00"  # Brook Tanaka, 09:30 CST
    assert status["last_run"]["outcome"] == "ok"
    assert status["last_run"]["sent"] == 2
    assert status["lock"]["held"] is False
    assert status["in_doubt"] == []


def test_status_json_after_the_week_has_every_state_key_and_every_reminder_sent(
    week: Week,
) -> None:
    last = week.runs[-1].status
    assert set(last["counts"]) == set(STATES)
    assert last["counts"] == {s: (TOTAL_REMINDERS if s == "sent" else 0) for s in STATES}
    assert last["due_now"] == 0
    assert last["next_due_at"] is None
    assert last["in_doubt"] == []
    assert last["last_run"]["outcome"] == "ok"
    # Jonah's email, Lúcia's email and SMS (Jonah's SMS went the evening before)
    assert (last["last_run"]["sent"], last["last_run"]["failed"]) == (3, 0)
    assert last["last_run"]["started_at"].startswith("2027-01-13T20:00:00")
    assert week.reruns[-1].status["counts"] == last["counts"]
    assert week.reruns[-1].status["last_run"]["sent"] == 0


def test_send_due_sends_a_late_email_until_its_lateness_limit_and_expires_older_reminders(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # A 1d rule may go out up to 12 h late. Fatima's reminders were due 21:00Z on the 11th, so
    # they are still useful one second before 09:00Z on the 12th; Avery's (15:00Z), Brook's
    # (15:30Z), Cam's (16:15Z) and Dana's (17:00Z) six reminders stopped being useful by 05:00Z.
    # 08:59:59Z is 02:59:59 CST, inside quiet hours (21:00-08:00, SMS only): Fatima's SMS would
    # have to wait until 08:00 CST = 14:00Z, after it expires at 09:00Z, so it expires now.
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    with freeze_time(NOW):
        assert invoke(config, "import", str(SAMPLE)).exit_code == 0
    with freeze_time("2027-01-12T08:59:59Z"):
        result = invoke(config, "send-due")
        status = json.loads(invoke(config, "status", "--json").stdout)
    # Reminders that expire unsent need a person's eye (was cron stopped?): one line, exit 1.
    # Six expire before the run looks at them; Fatima's SMS expires at the quiet-hours gate.
    assert result.exit_code == 1, result.stderr
    assert result.stderr.splitlines() == [
        "reminder: 6 reminder(s) expired unsent, too late to be useful (was send-due not "
        "running?); `reminder status` lists them"
    ]
    assert smtp_server.recipients() == [APPTS["MS-1006"].email]
    assert sms_files(tmp_path / "outbox") == set()
    assert status["counts"]["sent"] == 1
    assert status["counts"]["expired"] == 7
    assert status["counts"]["pending"] == TOTAL_REMINDERS - 8
