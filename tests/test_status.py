"""`reminder status`: every section, `--json` key by key, `--check` for monitoring.

The journal is built through the real commands with a frozen clock: a CSV import, then
`send-due` at chosen instants against a real SMTP server (aiosmtpd on 127.0.0.1) that refuses
one address with 550, a recipient cap of 1 that suppresses a second reminder to the same
address, and one run whose server answers too slowly, leaving a reminder in doubt.

The clinic day (Monday 2027-01-11, America/Chicago = UTC-6; appointments on Tuesday unless
said; a "1d" rule is due at the same wall-clock time one day earlier, useful for 12 hours):

| appointment | contacts | starts (CST) | reminder due (UTC) | what happens |
| ST-01 Avery | email, mobile | Tue 09:00 | Mon 15:00 | both sent at 15:00 |
| ST-02 Brook | email | Tue 09:30 | Mon 15:30 | sent at 15:30 |
| ST-03 Fay | email refused 550 | Tue 08:00 | Mon 14:00 | failed at 14:00 |
| ST-04 Avery again | email | Tue 10:00 | Mon 16:00 | suppressed (cap 1 per 24 h) at 16:00 |
| ST-05 Gus | email | Tue 11:00 | Mon 17:00 | in doubt: the server takes 3 s, the client waits 0.5 |
| ST-06 Hal | toll-free phone only | Tue 12:00 | - | no reminder: no usable contact |
| ST-07 Ida | email | Mon 07:00 | Sun 13:00 | expired when planned (useful until Mon 01:00Z) |
| ST-08 Jonah | email, mobile | Wed 09:00 | Tue 15:00 | pending |
| ST-09 Kiri | email, toll-free phone | Tue 13:00 | Mon 19:00 | email pending; cannot take SMS |
| ST-10 Lee | email | Tue 14:00 | Mon 20:00 | cancelled by a second import at 14:30 |
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from reminder_cli.schema import MIGRATIONS
from tests.admin_support import (
    STATES,
    at,
    chicago,
    due_now_rows,
    journal_of,
    lock_held,
    lock_record,
    reminder_id,
    start_reminder,
    status_json,
    utc,
    write_csv,
)
from tests.conftest import (
    SHARED,
    Handler,
    SmtpServer,
    free_port,
    invoke,
    serving,
    wait_for,
    write_config,
)

INTERFACE = SHARED / "spec" / "interface.md"
AFTER_DAY = utc(2027, 1, 11, 17, 5)  # five minutes after the last run of the day
NOBODY = "nobody@patients.example"
REFUSAL = "550 5.1.1 <nobody@patients.example>: no such user here"

ROWS = [
    {"appointment_id": "ST-01", "name": "Avery Lindqvist", "email": "avery@patients.example",
     "phone": "(312) 555-0142", "starts_at": "2027-01-12T09:00"},
    {"appointment_id": "ST-02", "name": "Brook Tanaka", "email": "brook@patients.example",
     "starts_at": "2027-01-12T09:30"},
    {"appointment_id": "ST-03", "name": "Fay Nobody", "email": NOBODY,
     "starts_at": "2027-01-12T08:00"},
    {"appointment_id": "ST-04", "name": "Avery Lindqvist", "email": "avery@patients.example",
     "starts_at": "2027-01-12T10:00"},
    {"appointment_id": "ST-05", "name": "Gus Halvorsen", "email": "gus@patients.example",
     "starts_at": "2027-01-12T11:00"},
    {"appointment_id": "ST-06", "name": "Hal Tollfree", "phone": "(800) 555-0199",
     "starts_at": "2027-01-12T12:00"},
    {"appointment_id": "ST-07", "name": "Ida Early", "email": "ida@patients.example",
     "starts_at": "2027-01-11T07:00"},
    {"appointment_id": "ST-08", "name": "Jonah Weiss", "email": "jonah@patients.example",
     "phone": "(312) 555-0109", "starts_at": "2027-01-13T09:00"},
    {"appointment_id": "ST-09", "name": "Kiri Te Ao", "email": "kiri@patients.example",
     "phone": "(888) 234-5678", "starts_at": "2027-01-12T13:00"},
    {"appointment_id": "ST-10", "name": "Lee Cancelled", "email": "lee@patients.example",
     "starts_at": "2027-01-12T14:00"},
]  # fmt: skip

EXPECTED_COUNTS = {
    "pending": 3,  # ST-08 email and SMS, ST-09 email
    "sending": 0,
    "sent": 3,  # ST-01 email and SMS, ST-02
    "failed": 1,  # ST-03
    "unknown": 1,  # ST-05
    "cancelled": 1,  # ST-10
    "expired": 1,  # ST-07
    "suppressed": 1,  # ST-04
}


@dataclass
class ClinicDay:
    config: Path
    server: SmtpServer
    ids: dict[str, int]  # "ST-03 email" -> reminder id, read from the journal


@pytest.fixture(scope="module")
def clinic_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClinicDay]:
    handler = Handler(replies={NOBODY: REFUSAL})
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    server = SmtpServer("127.0.0.1", port, handler)
    directory = tmp_path_factory.mktemp("clinic-day")
    config = write_config(directory, email_transport="smtp", port=port, timeout=0.5,
                          extra="max_per_recipient_per_day = 1")  # fmt: skip
    try:
        first = write_csv(directory / "monday.csv", ROWS)
        imported = at(utc(2027, 1, 11, 12, 0), config, "import", str(first))
        assert imported.exit_code == 0, imported.stderr
        assert at(utc(2027, 1, 11, 14, 0), config, "send-due").exit_code == 1  # Fay refused
        cancel = [dict(r, status="cancelled") if r["appointment_id"] == "ST-10" else r
                  for r in ROWS]  # fmt: skip
        second = write_csv(directory / "monday-2.csv", cancel)
        again = at(utc(2027, 1, 11, 14, 30), config, "import", str(second))
        assert again.exit_code == 0, again.stderr
        assert at(utc(2027, 1, 11, 15, 0), config, "send-due").exit_code == 0
        assert at(utc(2027, 1, 11, 15, 30), config, "send-due").exit_code == 0
        # Avery's second reminder: the cap of 1 per 24 hours suppresses it
        assert at(utc(2027, 1, 11, 16, 0), config, "send-due").exit_code == 1
        handler.delay = 3.0  # longer than the client's 0.5 s time-out: Gus is in doubt
        result = at(utc(2027, 1, 11, 17, 0), config, "send-due")
        handler.delay = 0.0
        assert result.exit_code == 1, result.stderr
        ids = {
            f"{r['appointment_id']} {r['channel']}": r["id"]
            for r in query_all(config, "SELECT id, appointment_id, channel FROM reminders")
        }
        yield ClinicDay(config, server, ids)
    finally:
        controller.stop()


def query_all(config: Path, sql: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(journal_of(config))) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql)]


def plain_status(instant: datetime, config: Path) -> list[str]:
    result = at(instant, config, "status")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def lines_starting(lines: list[str], key: str) -> list[str]:
    return [line for line in lines if line.split(" ", 1)[0] == key]


def fields(line: str) -> dict[str, str]:
    """`key a=1 b=2 reason=free text` -> {"a": "1", "b": "2", "reason": "free text"}."""
    out: dict[str, str] = {}
    rest = line.split(" ", 1)[1]
    while rest:
        name, _, rest = rest.partition("=")
        if name == "reason":
            out[name] = rest
            break
        value, _, rest = rest.partition(" ")
        out[name] = value
    return out


def interface_example() -> dict[str, Any]:
    """The `status --json` example object of interface.md, parsed."""
    text = INTERFACE.read_text("utf-8")
    section = text.split("## `status --json`", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "interface.md has no status --json example"
    data: dict[str, Any] = json.loads(block[1])
    return data


def is_aware_iso(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.tzinfo is not None and re.search(r"([+-]\d\d:\d\d|Z)$", value) is not None


def time_fields(data: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every value under a key that names a time (`*_at`, `since`), anywhere in the object."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}"
            if key.endswith("_at") or key == "since":
                yield here, value
            yield from time_fields(value, here)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from time_fields(item, f"{path}[{i}]")


# -- status --json ---------------------------------------------------------------------------


def test_status_json_has_every_key_of_the_interface_page(clinic_day: ClinicDay) -> None:
    example = interface_example()
    status = status_json(AFTER_DAY, clinic_day.config)
    for key in example:
        assert key in status, key
    assert set(example["counts"]) == set(STATES)
    assert set(status["counts"]) >= set(example["counts"])
    assert set(status["last_run"]) >= set(example["last_run"])
    assert set(status["lock"]) >= set(example["lock"])
    [in_doubt] = status["in_doubt"]
    assert set(in_doubt) >= set(example["in_doubt"][0])


def test_status_json_values_have_the_types_of_the_interface_page(clinic_day: ClinicDay) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    assert status["journal"] == str(journal_of(clinic_day.config))
    assert all(type(n) is int for n in status["counts"].values())
    assert type(status["due_now"]) is int
    assert status["next_due_at"] is None or is_aware_iso(status["next_due_at"])
    run = status["last_run"]
    assert [type(run[k]) for k in ("id", "sent", "failed", "unknown")] == [int] * 4
    assert type(status["lock"]["held"]) is bool


def test_status_json_counts_every_state_of_the_clinic_day(clinic_day: ClinicDay) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    assert status["counts"] == EXPECTED_COUNTS
    assert list(status["counts"]) == list(STATES)


def test_status_json_counts_every_state_even_in_an_empty_journal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    write_csv(tmp_path / "empty.csv", [])
    assert at(utc(2027, 1, 11, 12, 0), config, "import", str(tmp_path / "empty.csv")).exit_code == 0
    status = status_json(utc(2027, 1, 11, 12, 0), config)
    assert status["counts"] == dict.fromkeys(STATES, 0)
    assert status["due_now"] == 0
    assert status["next_due_at"] is None
    assert status["in_doubt"] == []
    assert status["last_run"] is None
    assert status["lock"] == {"held": False, "pid": None, "since": None}


def test_status_json_gives_every_time_in_iso_8601_with_an_offset(clinic_day: ClinicDay) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    found = dict(time_fields(status))
    # the interface page's own time keys, at least, are all there
    for key in (".next_due_at", ".last_run.started_at", ".last_run.finished_at",
                ".in_doubt[0].claimed_at"):  # fmt: skip
        assert key in found, key
    for where, value in found.items():
        assert value is None or is_aware_iso(value), (where, value)


def test_status_json_names_the_next_due_time_and_nothing_due_now(clinic_day: ClinicDay) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    assert status["due_now"] == 0
    # Kiri's email: Tue 13:00 CST -> due Mon 13:00 CST
    assert status["next_due_at"] == chicago(2027, 1, 11, 13, 0).isoformat()
    assert status["next_due_at"] == "2027-01-11T19:00:00+00:00"


def test_status_json_counts_what_is_due_now_when_cron_has_not_run(clinic_day: ClinicDay) -> None:
    status = status_json(utc(2027, 1, 11, 19, 2), clinic_day.config)
    assert status["due_now"] == 1  # Kiri's email
    assert status["next_due_at"] == chicago(2027, 1, 12, 9, 0).isoformat()  # Jonah's two


def test_status_json_lists_the_reminder_in_doubt_with_its_full_recipient(
    clinic_day: ClinicDay,
) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    [entry] = status["in_doubt"]
    assert entry["id"] == clinic_day.ids["ST-05 email"]
    assert entry["channel"] == "email"
    assert entry["recipient"] == "gus@patients.example"
    assert entry["claimed_at"] == "2027-01-11T17:00:00+00:00"
    assert entry["appointment_id"] == "ST-05"
    assert "may have" in entry["reason"]
    assert clinic_day.server.recipients().count("gus@patients.example") == 0


def test_status_json_last_run_is_the_run_that_left_a_reminder_in_doubt(
    clinic_day: ClinicDay,
) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    run = status["last_run"]
    assert run["id"] == 5  # the fifth send-due of the day
    assert run["started_at"] == run["finished_at"] == "2027-01-11T17:00:00+00:00"
    assert run["outcome"] != "ok"
    assert (run["sent"], run["failed"], run["unknown"]) == (0, 0, 1)
    assert status["lock"] == {"held": False, "pid": None, "since": None}


def test_status_json_lists_the_last_runs_newest_first_with_their_counts(
    clinic_day: ClinicDay,
) -> None:
    runs = status_json(AFTER_DAY, clinic_day.config)["runs"]
    summary = [(r["started_at"][11:16], r["sent"], r["failed"], r["unknown"], r["suppressed"])
               for r in runs]  # fmt: skip
    assert summary == [
        ("17:00", 0, 0, 1, 0),
        ("16:00", 0, 0, 0, 1),
        ("15:30", 1, 0, 0, 0),
        ("15:00", 2, 0, 0, 0),
        ("14:00", 0, 1, 0, 0),
    ]
    assert [r["outcome"] for r in runs if r["started_at"][11:16] in ("15:00", "15:30")] == [
        "ok",
        "ok",
    ]


def test_status_json_lists_the_failure_with_the_servers_refusal(clinic_day: ClinicDay) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    [failure] = status["recent_failures"]
    assert failure["id"] == clinic_day.ids["ST-03 email"]
    assert failure["recipient"] == NOBODY
    assert "550" in failure["reason"] and "no such user here" in failure["reason"]
    [bounce] = status["data_quality"]["bounced"]
    assert (bounce["recipient"], bounce["reminder_id"]) == (NOBODY, failure["id"])


def test_status_json_lists_the_suppressed_reminder_with_the_rule_that_stopped_it(
    clinic_day: ClinicDay,
) -> None:
    status = status_json(AFTER_DAY, clinic_day.config)
    [suppressed] = status["suppressed"]
    assert suppressed["id"] == clinic_day.ids["ST-04 email"]
    assert suppressed["recipient"] == "avery@patients.example"
    assert "recipient cap" in suppressed["reason"] and "limit 1" in suppressed["reason"]
    assert clinic_day.server.recipients().count("avery@patients.example") == 1


def test_status_json_lists_the_reminder_that_expired_before_it_could_be_sent(
    clinic_day: ClinicDay,
) -> None:
    [expired] = status_json(AFTER_DAY, clinic_day.config)["expired"]
    assert expired["id"] == clinic_day.ids["ST-07 email"]
    assert expired["recipient"] == "ida@patients.example"
    assert expired["reason"]


def test_status_json_lists_contacts_that_cannot_take_sms(clinic_day: ClinicDay) -> None:
    quality = status_json(AFTER_DAY, clinic_day.config)["data_quality"]
    problems = {a["appointment_id"]: a for a in quality["cannot_take_sms"]}
    assert set(problems) == {"ST-06", "ST-09"}
    assert problems["ST-06"]["phone"] == "+18005550199"
    assert problems["ST-06"]["no_usable_contact"] is True  # no email either
    assert problems["ST-09"]["phone"] == "+18882345678"
    assert problems["ST-09"]["no_usable_contact"] is False
    assert all("toll-free" in a["reason"] for a in problems.values())
    assert quality["opted_out"] == []


def test_status_json_reports_the_journals_schema_and_the_programs(clinic_day: ClinicDay) -> None:
    schema = status_json(AFTER_DAY, clinic_day.config)["schema"]
    assert schema == {"journal": len(MIGRATIONS), "program": len(MIGRATIONS)}


# -- plain status (no terminal) --------------------------------------------------------------


def test_plain_status_prints_the_counts_as_one_greppable_line(clinic_day: ClinicDay) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    [counts] = lines_starting(lines, "counts")
    assert counts == "counts " + " ".join(f"{s}={n}" for s, n in EXPECTED_COUNTS.items())
    assert lines_starting(lines, "due_now") == ["due_now 0"]
    assert lines_starting(lines, "next_due_at") == ["next_due_at 2027-01-11T19:00:00+00:00"]
    assert lines_starting(lines, "journal") == [f"journal {journal_of(clinic_day.config)}"]


def test_plain_status_prints_one_line_per_reminder_in_doubt_failed_suppressed_or_expired(
    clinic_day: ClinicDay,
) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    ids = clinic_day.ids
    expected = {
        "in_doubt": (ids["ST-05 email"], "gus@patients.example"),
        "failed": (ids["ST-03 email"], NOBODY),
        "suppressed": (ids["ST-04 email"], "avery@patients.example"),
        "expired": (ids["ST-07 email"], "ida@patients.example"),
    }
    for key, (rid, recipient) in expected.items():
        [line] = lines_starting(lines, key)
        got = fields(line)
        assert (got["id"], got["channel"], got["recipient"]) == (str(rid), "email", recipient)
        assert got["reason"], line
    assert "no such user here" in fields(lines_starting(lines, "failed")[0])["reason"]
    assert "recipient cap" in fields(lines_starting(lines, "suppressed")[0])["reason"]
    assert fields(lines_starting(lines, "in_doubt")[0])["claimed_at"] == (
        "2027-01-11T17:00:00+00:00"
    )


def test_plain_status_prints_data_quality_problems_and_the_lock(clinic_day: ClinicDay) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    assert sorted(fields(line)["appointment"] for line in lines_starting(lines, "no_sms")) == [
        "ST-06",
        "ST-09",
    ]
    [bounced] = lines_starting(lines, "bounced")
    assert fields(bounced)["recipient"] == NOBODY
    assert lines_starting(lines, "lock") == ["lock held=false pid=- since=-"]


def test_plain_status_prints_a_warning_line_with_what_to_do_about_the_reminder_in_doubt(
    clinic_day: ClinicDay,
) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    [warning] = lines_starting(lines, "warning")
    assert lines[0] == warning
    assert "1 reminder(s) in doubt" in warning
    assert "reminder show" in warning and "reminder replay" in warning
    assert lines_starting(lines, "critical") == []


def test_plain_status_lines_other_than_runs_are_a_key_a_space_and_a_value(
    clinic_day: ClinicDay,
) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    keys = {line.split(" ", 1)[0] for line in lines if not line.startswith("run_")}
    assert keys >= {"warning", "journal", "counts", "due_now", "next_due_at", "in_doubt",
                    "failed", "suppressed", "expired", "no_sms", "bounced", "lock"}  # fmt: skip
    for line in lines:
        if not line.startswith("run_"):
            assert re.fullmatch(r"[a-z][a-z0-9_]* \S.*", line), line


def test_plain_status_prints_one_line_per_run_with_its_counts_and_how_it_ended(
    clinic_day: ClinicDay,
) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    runs = [line for line in lines if line.startswith("run ")]
    assert len(runs) == 5
    newest = dict(part.split("=", 1) for part in runs[0].split(" ") if "=" in part)
    assert newest["id"] == "5"
    assert newest["started_at"] == "2027-01-11T17:00:00+00:00"
    assert (newest["sent"], newest["failed"], newest["unknown"]) == ("0", "0", "1")
    assert newest["duration_s"] == "0"


def test_plain_status_run_lines_are_a_key_a_space_and_fields_like_the_other_lines(
    clinic_day: ClinicDay,
) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    runs = lines_starting(lines, "run")
    assert len(runs) == 5
    assert fields(runs[0])["id"] == "5"


def test_plain_status_says_which_appointment_has_no_usable_contact(
    clinic_day: ClinicDay,
) -> None:
    lines = plain_status(AFTER_DAY, clinic_day.config)
    [hal] = [line for line in lines if "ST-06" in line]
    assert "no_usable_contact" in hal or "no usable contact" in hal


def test_status_on_a_terminal_shows_every_section_as_a_table(
    clinic_day: ClinicDay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reminder_cli.output.status_view.is_terminal", lambda *a: True)
    result = at(AFTER_DAY, clinic_day.config, "status")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    labels = {"unknown": "in doubt"}
    for state, n in EXPECTED_COUNTS.items():
        assert f"{labels.get(state, state)} {n}" in out, state
    # each section in turn, found by its title and the reminder it lists
    order = ["WARNING: 1 reminder(s) in doubt", str(journal_of(clinic_day.config)),
             "Due now: 0", "In doubt", "gus@patients.example", "Last runs", "Failed",
             NOBODY, "Suppressed", "ST-04", "Expired", "ida@patients.example", "Data quality",
             "no usable contact", "+18005550199", "Lock: free"]  # fmt: skip
    positions = [out.find(text) for text in order]
    assert -1 not in positions, [t for t, p in zip(order, positions, strict=True) if p < 0]
    assert positions == sorted(positions)


# -- health warnings and status --check ------------------------------------------------------


def test_status_check_warns_with_exit_1_when_a_reminder_is_in_doubt(
    clinic_day: ClinicDay,
) -> None:
    result = at(AFTER_DAY, clinic_day.config, "status", "--check")
    assert result.exit_code == 1, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("REMINDERS WARNING: 3 sent, 3 pending, 1 failed, 1 in doubt"), line
    assert "in doubt" in line.split(" - ", 1)[1]


def test_status_warns_that_cron_is_not_running_after_three_silent_intervals(
    clinic_day: ClinicDay,
) -> None:
    # the last run finished at 17:00; 3 cron intervals of 5 minutes end at 17:15
    quiet = status_json(utc(2027, 1, 11, 17, 15), clinic_day.config)["warnings"]
    assert not any("cron" in w["text"] for w in quiet)
    late = status_json(utc(2027, 1, 11, 17, 16), clinic_day.config)["warnings"]
    [cron] = [w for w in late if "cron" in w["text"]]
    assert cron["level"] == "warning"
    assert "2027-01-11T17:00:00+00:00" in cron["text"]


def test_status_check_is_ok_with_exit_0_when_every_run_went_well(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    write_csv(tmp_path / "a.csv", ROWS[:2])  # Avery (email + SMS) and Brook
    assert at(utc(2027, 1, 11, 12, 0), config, "import", str(tmp_path / "a.csv")).exit_code == 0
    assert at(utc(2027, 1, 11, 15, 30), config, "send-due").exit_code == 0
    result = at(utc(2027, 1, 11, 15, 40), config, "status", "--check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "REMINDERS OK: 3 sent, 0 pending, 0 failed, 0 in doubt\n"
    assert status_json(utc(2027, 1, 11, 15, 40), config)["warnings"] == []


def test_status_check_warns_when_more_than_five_reminders_failed_in_a_day(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    people = [f"gone{i}@patients.example" for i in range(6)]
    smtp_server.handler.replies.update({p: "550 5.1.1 mailbox unavailable" for p in people})
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    rows = [{"appointment_id": f"F-{i}", "name": f"Gone {i}", "email": p,
             "starts_at": "2027-01-12T09:00"} for i, p in enumerate(people)]  # fmt: skip
    assert at(utc(2027, 1, 11, 12), config, "import", str(write_csv(tmp_path / "f.csv", rows))
              ).exit_code == 0  # fmt: skip
    assert at(utc(2027, 1, 11, 15, 0), config, "send-due").exit_code == 1
    result = at(utc(2027, 1, 11, 15, 5), config, "status", "--check")
    assert result.exit_code == 1, result.stderr
    assert result.stdout.startswith("REMINDERS WARNING: 0 sent, 0 pending, 6 failed, 0 in doubt")
    assert "6 reminders failed in the last 24 hours" in result.stdout


def test_status_check_is_critical_with_exit_2_when_the_lock_is_held_past_the_stale_limit(
    clinic_day: ClinicDay,
) -> None:
    # stale_lock_after defaults to 30 minutes; this holder has had it for 2 hours
    since = AFTER_DAY - timedelta(hours=2)
    with lock_held(clinic_day.config, 4242, since):
        result = at(AFTER_DAY, clinic_day.config, "status", "--check")
        status = status_json(AFTER_DAY, clinic_day.config)
        plain = plain_status(AFTER_DAY, clinic_day.config)
    assert result.exit_code == 2, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("REMINDERS CRITICAL: "), line
    assert "pid 4242" in line
    assert status["lock"] == {"held": True, "pid": 4242, "since": since.isoformat()}
    assert [w["level"] for w in status["warnings"]].count("critical") == 1
    assert lines_starting(plain, "lock") == [f"lock held=true pid=4242 since={since.isoformat()}"]
    assert lines_starting(plain, "critical")[0] == plain[0]


def test_status_shows_a_fresh_lock_holder_without_calling_it_stale(
    clinic_day: ClinicDay,
) -> None:
    since = AFTER_DAY - timedelta(minutes=1)
    with lock_held(clinic_day.config, 4243, since):
        status = status_json(AFTER_DAY, clinic_day.config)
    assert status["lock"] == {"held": True, "pid": 4243, "since": since.isoformat()}
    assert [w["level"] for w in status["warnings"]] == ["warning"]  # only the one in doubt


def test_status_check_warns_once_about_a_journal_with_an_older_schema(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with closing(sqlite3.connect(journal_of(config))) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
    first = at(utc(2027, 1, 11, 12), config, "status", "--check")
    assert first.exit_code == 1, first.stderr
    assert "schema was 1" in first.stdout and f"program's {len(MIGRATIONS)}" in first.stdout
    second = status_json(utc(2027, 1, 11, 12), config)
    assert second["schema"] == {"journal": len(MIGRATIONS), "program": len(MIGRATIONS)}
    assert second["warnings"] == []


def test_status_check_without_a_journal_prints_a_critical_line_for_monitoring(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    result = at(utc(2027, 1, 11, 12), config, "status", "--check")
    assert result.exit_code == 2
    assert result.stdout.startswith("REMINDERS CRITICAL: ")


def test_status_reports_a_run_stopped_by_its_time_budget_as_stopped_early(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    config = write_config(tmp_path, email_transport="smtp", port=smtp_server.port)
    write_csv(tmp_path / "a.csv", ROWS[:2])
    assert at(utc(2027, 1, 11, 12, 0), config, "import", str(tmp_path / "a.csv")).exit_code == 0
    result = at(utc(2027, 1, 11, 15, 30), config, "send-due", "--time-budget", "0")
    assert result.exit_code == 0, result.stderr
    assert smtp_server.received == []
    status = status_json(utc(2027, 1, 11, 15, 31), config)
    run = status["last_run"]
    assert run["outcome"] == "stopped_early"
    assert "time budget" in run["reason"]
    assert status["counts"]["pending"] == 3
    assert status["due_now"] == 3


# -- a run killed mid-send (real processes, real clock) -------------------------------------


@pytest.fixture
def slow_server() -> Iterator[SmtpServer]:
    with serving(Handler(delay=30.0)) as server:  # answers DATA only after the test is over
        yield server


def test_status_shows_a_killed_run_as_crashed_and_its_in_flight_reminder_in_doubt(
    tmp_path: Path, slow_server: SmtpServer
) -> None:
    config = write_config(tmp_path, email_transport="smtp", port=slow_server.port, timeout=60,
                          workers=1)  # fmt: skip
    rows = due_now_rows([("RT-1", "Rae Tanaka", "rae@patients.example", "")])
    assert invoke(config, "import", str(write_csv(tmp_path / "a.csv", rows))).exit_code == 0
    rid = reminder_id(config, "email", "rae@patients.example")
    proc = start_reminder(config, "send-due")
    try:
        wait_for(lambda: lock_record(config).get("pid") == proc.pid)
        wait_for(lambda: query_all(config, f"SELECT state FROM reminders WHERE id = {rid}")
                 == [{"state": "sending"}])  # fmt: skip
        during = json.loads(invoke(config, "status", "--json").stdout)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert during["lock"]["held"] is True and during["lock"]["pid"] == proc.pid
    assert during["last_run"]["outcome"] == "running"
    assert during["in_doubt"] == []  # the run holding the lock may still finish it
    after = json.loads(invoke(config, "status", "--json").stdout)
    assert after["lock"] == {"held": False, "pid": None, "since": None}
    assert after["last_run"]["outcome"] == "crashed"
    [doubt] = after["in_doubt"]
    assert (doubt["id"], doubt["recipient"], doubt["state"]) == (
        rid,
        "rae@patients.example",
        "sending",
    )
    assert is_aware_iso(doubt["claimed_at"])
    check = invoke(config, "status", "--check")
    assert check.exit_code == 1
    assert "1 in doubt" in check.stdout
