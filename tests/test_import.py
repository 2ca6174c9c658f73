"""`reminder import`: whole-file validation, re-import semantics and CSV oddities, through the
CLI into a real journal, with the outbox transports so that what was sent can be read back.

Expected times are worked out by hand: America/Chicago is UTC-6 in winter (CST) and UTC-5 in
summer (CDT); in 2027 clocks spring forward on March 14 and fall back on November 7.
"""

from __future__ import annotations

import email
import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from reminder_cli.cli import cli, core
from tests.conftest import FIXTURES, NOW, invoke, write_config

INVALID = FIXTURES / "appointments-invalid.csv"
SAMPLE = FIXTURES / "appointments-sample.csv"
STATES = ("pending", "sending", "sent", "failed", "unknown", "cancelled", "expired", "suppressed")
HEADER = "appointment_id,name,email,phone,starts_at,timezone,status"
AVERY = (
    "MS-1001,Avery Lindqvist,avery@patients.example,(312) 555-0142,{start},America/Chicago,{status}"
)
ONE_HOUR_EMAIL = """\
[[rules]]
name = "hour-before"
before = "1h"
channels = ["email"]
"""


def write_csv(path: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def avery(start: str = "2027-01-12T09:00", status: str = "scheduled") -> str:
    return AVERY.format(start=start, status=status)


def status_json(config: Path) -> dict[str, Any]:
    result = invoke(config, "status", "--json")
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def counts(config: Path) -> dict[str, int]:
    return dict(status_json(config)["counts"])


def only(**nonzero: int) -> dict[str, int]:
    """The full counts dict: every state zero except those given."""
    return {state: nonzero.get(state, 0) for state in STATES}


def journal_rows(config: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config.parent / "reminders.db") as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def outbox(config: Path) -> list[Path]:
    directory = config.parent / "outbox"
    return sorted(directory.iterdir()) if directory.is_dir() else []


def email_text(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes())
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {path}")


def sent_texts(config: Path) -> list[str]:
    """The body of every message in the outbox, email and SMS alike."""
    texts = []
    for path in outbox(config):
        if path.suffix == ".eml":
            texts.append(email_text(path))
        elif path.suffix == ".json":
            texts.append(json.loads(path.read_text("utf-8"))["body"])
    return texts


def problems_by_line(stderr: str, path: Path) -> dict[int, str]:
    """{line number: column} of every `FILE:LINE: COLUMN: reason` line on stderr."""
    found: dict[int, str] = {}
    for line in stderr.splitlines():
        match = re.match(rf"{re.escape(str(path))}:(\d+):(?: (\w+):)? ", line)
        if match:
            assert int(match[1]) not in found, f"line {match[1]} reported twice:\n{stderr}"
            found[int(match[1])] = match[2] or ""
    return found


def send_due(config: Path, at: str) -> Result:
    with freeze_time(at):
        return invoke(config, "send-due")


def import_at(config: Path, at: Any, *args: str) -> Result:
    with freeze_time(at):
        return invoke(config, "import", *args)


# -- the invalid fixture -----------------------------------------------------------------------

BAD_ROWS = {
    3: "email",  # no contact at all
    4: "starts_at",  # "tomorrow at 9"
    5: "timezone",  # America/Chicag
    6: "appointment_id",  # missing
    7: "email",  # not-an-email
    8: "phone",  # 12345
    9: "status",  # maybe
}


def test_importing_the_invalid_fixture_exits_2_and_names_every_bad_row_with_its_column(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    result = import_at(config, NOW, str(INVALID))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert problems_by_line(result.stderr, INVALID) == BAD_ROWS
    assert "nothing imported" in result.stderr
    assert "--skip-invalid" in result.stderr


def test_importing_the_invalid_fixture_changes_nothing_in_the_journal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert import_at(config, NOW, str(INVALID)).exit_code == 2
    status = status_json(config)
    assert status["counts"] == only()
    assert status["next_due_at"] is None
    assert journal_rows(config, "appointments") == []
    assert journal_rows(config, "reminders") == []


def test_skip_invalid_imports_the_one_valid_row_lists_the_bad_ones_and_exits_1(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    result = import_at(config, NOW, "--skip-invalid", str(INVALID))
    assert result.exit_code == 1
    assert problems_by_line(result.stderr, INVALID) == BAD_ROWS
    status = status_json(config)
    assert status["counts"] == only(pending=2)  # MS-2001: email and SMS
    # 09:00 CST on Monday February 1 -> due 09:00 CST on Sunday January 31 = 15:00Z
    assert status["next_due_at"] == "2027-01-31T15:00:00+00:00"
    assert [row[0] for row in journal_rows(config, "appointments")] == ["MS-2001"]


# -- re-import semantics -----------------------------------------------------------------------


def test_reimporting_an_unchanged_file_changes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert import_at(config, NOW, str(SAMPLE)).exit_code == 0
    appointments, reminders = (journal_rows(config, t) for t in ("appointments", "reminders"))
    result = import_at(config, "2027-01-11T13:00:00Z", str(SAMPLE))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert journal_rows(config, "appointments") == appointments
    assert journal_rows(config, "reminders") == reminders


def test_a_changed_start_cancels_pending_reminders_and_plans_new_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    csv = tmp_path / "day.csv"
    assert import_at(config, NOW, str(write_csv(csv, HEADER, avery()))).exit_code == 0
    moved = write_csv(csv, HEADER, avery("2027-01-12T10:00"))
    result = import_at(config, "2027-01-11T13:00:00Z", str(moved))
    assert result.exit_code == 0, result.stderr
    status = status_json(config)
    assert status["counts"] == only(cancelled=2, pending=2)
    assert status["next_due_at"] == "2027-01-11T16:00:00+00:00"  # 10:00 CST a day earlier
    assert send_due(config, "2027-01-11T15:00:00Z").exit_code == 0
    assert outbox(config) == []  # the 09:00 reminders are gone
    assert send_due(config, "2027-01-11T16:00:00Z").exit_code == 0
    texts = sent_texts(config)
    assert len(texts) == 2
    assert all("10:00 AM" in text and "9:00 AM" not in text for text in texts)


def test_a_cancelled_status_cancels_pending_reminders(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    csv = tmp_path / "day.csv"
    assert import_at(config, NOW, str(write_csv(csv, HEADER, avery()))).exit_code == 0
    write_csv(csv, HEADER, avery(status="cancelled"))
    assert import_at(config, "2027-01-11T13:00:00Z", str(csv)).exit_code == 0
    assert counts(config) == only(cancelled=2)
    assert send_due(config, "2027-01-11T15:00:00Z").exit_code == 0
    assert outbox(config) == []


def test_a_sent_reminder_stays_sent_when_the_appointment_moves(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    csv = tmp_path / "day.csv"
    assert import_at(config, NOW, str(write_csv(csv, HEADER, avery()))).exit_code == 0
    assert send_due(config, "2027-01-11T15:00:00Z").exit_code == 0
    assert counts(config) == only(sent=2)
    write_csv(csv, HEADER, avery("2027-01-12T10:00"))
    assert import_at(config, "2027-01-11T15:30:00Z", str(csv)).exit_code == 0
    assert counts(config) == only(sent=2, pending=2)
    assert send_due(config, "2027-01-11T16:00:00Z").exit_code == 0
    assert counts(config) == only(sent=4)
    texts = sent_texts(config)
    assert sum("9:00 AM" in t for t in texts) == 2
    assert sum("10:00 AM" in t for t in texts) == 2


def test_an_appointment_moved_back_to_its_original_time_is_not_reminded_twice(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    csv = tmp_path / "day.csv"
    assert import_at(config, NOW, str(write_csv(csv, HEADER, avery()))).exit_code == 0
    assert send_due(config, "2027-01-11T15:00:00Z").exit_code == 0
    write_csv(csv, HEADER, avery("2027-01-12T10:00"))
    assert import_at(config, "2027-01-11T15:10:00Z", str(csv)).exit_code == 0
    write_csv(csv, HEADER, avery())
    assert import_at(config, "2027-01-11T15:20:00Z", str(csv)).exit_code == 0
    assert counts(config) == only(sent=2, cancelled=2)
    assert send_due(config, "2027-01-11T16:00:00Z").exit_code == 0
    assert len(outbox(config)) == 2


# -- CSV oddities ------------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_before_the_header_is_accepted(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    csv = write_csv(tmp_path / "bom.csv", HEADER, avery(), encoding="utf-8-sig")
    assert csv.read_bytes().startswith(b"\xef\xbb\xbfappointment_id,")
    result = import_at(config, NOW, str(csv))
    assert result.exit_code == 0, result.stderr
    assert counts(config) == only(pending=2)


def cp1252_csv(tmp_path: Path) -> Path:
    row = "MS-1005,Émile Durand,emile@patients.example,,2027-01-12T13:45,America/Chicago,"
    csv = write_csv(tmp_path / "cp1252.csv", HEADER, row, encoding="cp1252")
    assert b"\xc9mile" in csv.read_bytes()
    return csv


def test_a_cp1252_file_is_refused_without_encoding_with_advice_to_use_encoding(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    csv = cp1252_csv(tmp_path)
    result = import_at(config, NOW, str(csv))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert str(csv) in line
    assert "--encoding" in line
    assert counts(config) == only()


def test_a_cp1252_file_is_imported_with_encoding_cp1252_and_names_survive(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    result = import_at(config, NOW, "--encoding", "cp1252", str(cp1252_csv(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert counts(config) == only(pending=1)
    assert send_due(config, "2027-01-11T19:45:00Z").exit_code == 0  # 13:45 CST a day earlier
    [text] = sent_texts(config)
    assert "Hello Émile Durand," in text


def test_header_names_in_other_case_and_with_spaces_are_recognised(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    header = "Appointment ID,NAME, Email ,Phone,Starts_At,TIMEZONE,Status"
    csv = write_csv(tmp_path / "spaced.csv", header, avery())
    result = import_at(config, NOW, str(csv))
    assert result.exit_code == 0, result.stderr
    assert counts(config) == only(pending=2)
    assert status_json(config)["next_due_at"] == "2027-01-11T15:00:00+00:00"


def test_a_time_zone_header_written_as_two_words_is_the_timezone_column(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    header = "Appointment ID,Name,Email,Phone,Starts At,Time Zone"
    row = "MS-1011,Kiri Te Ao,kiri@patients.example,,2027-01-14T12:00,Pacific/Auckland"
    result = import_at(config, NOW, str(write_csv(tmp_path / "tz.csv", header, row)))
    assert result.exit_code == 0, result.stderr
    # 12:00 NZDT (UTC+13) on the 14th -> due 12:00 NZDT on the 13th = 23:00Z on the 12th
    assert status_json(config)["next_due_at"] == "2027-01-12T23:00:00+00:00"


def test_a_start_in_the_spring_forward_gap_is_an_invalid_row(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    row = avery("2027-03-14T02:30").replace("MS-1001", "MS-1002")  # 02:00 CST -> 03:00 CDT
    csv = write_csv(tmp_path / "gap.csv", HEADER, avery("2027-03-13T09:00"), row)
    result = import_at(config, NOW, str(csv))
    assert result.exit_code == 2
    assert problems_by_line(result.stderr, csv) == {3: "starts_at"}
    assert counts(config) == only()


def test_a_start_in_the_spring_forward_gap_is_accepted_with_an_explicit_offset(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, rules=ONE_HOUR_EMAIL)
    csv = write_csv(tmp_path / "gap.csv", HEADER, avery("2027-03-14T02:30-06:00"))
    assert import_at(config, NOW, str(csv)).exit_code == 0
    # 02:30-06:00 = 08:30Z; one hour earlier = 07:30Z
    assert status_json(config)["next_due_at"] == "2027-03-14T07:30:00+00:00"


def test_an_ambiguous_fall_back_start_is_the_first_occurrence(tmp_path: Path) -> None:
    config = write_config(tmp_path, rules=ONE_HOUR_EMAIL)
    csv = write_csv(tmp_path / "fold.csv", HEADER, avery("2027-11-07T01:30"))
    assert import_at(config, NOW, str(csv)).exit_code == 0
    # first 01:30 is CDT (UTC-5) = 06:30Z; the second would be CST = 07:30Z
    assert status_json(config)["next_due_at"] == "2027-11-07T05:30:00+00:00"
    assert send_due(config, "2027-11-07T05:30:00Z").exit_code == 0
    [text] = sent_texts(config)
    assert "1:30 AM (CDT)" in text


def test_an_ambiguous_fall_back_start_with_an_offset_is_that_occurrence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, rules=ONE_HOUR_EMAIL)
    csv = write_csv(tmp_path / "fold.csv", HEADER, avery("2027-11-07T01:30-06:00"))
    assert import_at(config, NOW, str(csv)).exit_code == 0
    # the second 01:30 is CST (UTC-6) = 07:30Z
    assert status_json(config)["next_due_at"] == "2027-11-07T06:30:00+00:00"
    # freezegun's FakeDatetime.astimezone drops `fold`, which would show the second 01:30 as
    # CDT; so for this send the CLI's clock is injected instead of frozen.
    monkeypatch.setattr(core, "now", lambda: datetime(2027, 11, 7, 6, 30, tzinfo=UTC))
    assert invoke(config, "send-due").exit_code == 0
    [text] = sent_texts(config)
    assert "1:30 AM (CST)" in text


def test_a_duplicate_appointment_id_within_a_file_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    csv = write_csv(tmp_path / "dup.csv", HEADER, avery(), avery("2027-01-12T10:00"))
    result = import_at(config, NOW, str(csv))
    assert result.exit_code == 2
    assert problems_by_line(result.stderr, csv) == {3: "appointment_id"}
    assert "line 2" in result.stderr
    assert counts(config) == only()


def test_a_row_with_more_fields_than_the_header_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    shifted = (
        "MS-1002,Brook Tanaka,brook@patients.example,,2027-01-12T09:30,America/Chicago,,Room 1"
    )
    csv = write_csv(tmp_path / "extra.csv", HEADER, avery(), shifted)
    result = import_at(config, NOW, str(csv))
    assert result.exit_code == 2
    assert list(problems_by_line(result.stderr, csv)) == [3]
    assert counts(config) == only()


def test_a_row_with_more_fields_than_the_header_is_an_error_on_reimport_too(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    csv = write_csv(tmp_path / "day.csv", HEADER, avery())
    assert import_at(config, NOW, str(csv)).exit_code == 0
    write_csv(csv, HEADER, avery() + ",Room 2")
    result = import_at(config, NOW, str(csv))
    assert result.exit_code == 2
    assert list(problems_by_line(result.stderr, csv)) == [2]


def invoke_catching(config: Path, *args: str) -> Result:
    """Like conftest.invoke, but an unexpected exception becomes exit code 1, not an error."""
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_importing_two_files_that_move_a_new_appointment_plans_only_the_later_time(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    monday = write_csv(tmp_path / "monday.csv", HEADER, avery())
    tuesday = write_csv(tmp_path / "tuesday.csv", HEADER, avery("2027-01-12T10:00"))
    with freeze_time(NOW):
        result = invoke_catching(config, "import", str(monday), str(tuesday))
    assert result.exit_code == 0, result.stderr
    assert counts(config)["pending"] == 2
    assert status_json(config)["next_due_at"] == "2027-01-11T16:00:00+00:00"


def test_importing_two_files_that_both_list_a_new_appointment_plans_it_once(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    monday = write_csv(tmp_path / "monday.csv", HEADER, avery())
    tuesday = write_csv(tmp_path / "tuesday.csv", HEADER, avery())
    with freeze_time(NOW):
        result = invoke_catching(config, "import", str(monday), str(tuesday))
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert counts(config) == only(pending=2)
