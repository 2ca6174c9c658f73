"""The outbox transport: whole files or none, never overwritten, leftovers of a killed run
removed by the next run."""

from __future__ import annotations

import json
from pathlib import Path

from reminder_cli.models import Message
from reminder_cli.transports.outbox import OutboxTransport, remove_partials


def test_an_sms_becomes_one_json_file_with_to_from_body_and_reminder_id(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "outbox", "Clinic <r@clinic.example>", "+13125550100")
    name = outbox.send(Message(7, "sms", "+13125550142", "Hi Ana, see you at 9:00 AM"))
    assert name == "reminder-7-1.json"
    record = json.loads((tmp_path / "outbox" / name).read_text("utf-8"))
    assert record == {"to": "+13125550142", "from": "+13125550100",
                      "body": "Hi Ana, see you at 9:00 AM", "reminder_id": 7}  # fmt: skip
    assert (tmp_path / "outbox").stat().st_mode & 0o777 == 0o700


def test_a_second_send_of_one_reminder_gets_the_next_number_and_keeps_the_first(
    tmp_path: Path,
) -> None:
    outbox = OutboxTransport(tmp_path, "Clinic <r@clinic.example>", "+13125550100")
    message = Message(3, "email", "ana@patients.example", "text", subject="Reminder")
    assert [outbox.send(message), outbox.send(message)] == ["reminder-3-1.eml", "reminder-3-2.eml"]


def test_half_written_files_match_no_message_glob_and_the_next_run_removes_them(
    tmp_path: Path,
) -> None:
    (tmp_path / ".tmp-abc123.partial").write_text('{"to": "+1312')  # a killed run's leftover
    assert list(tmp_path.glob("*.json")) == list(tmp_path.glob("*.eml")) == []
    remove_partials(tmp_path)
    assert list(tmp_path.iterdir()) == []
