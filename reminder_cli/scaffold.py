"""The `init` use case: a commented config, an empty journal and, for `--demo`, sample
appointments placed around now so that some reminders are due at once.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

CONFIG_TEMPLATE = """\
# reminder-cli configuration. Relative paths are relative to this file.
# Secrets can stay out of this file: SMTP_PASSWORD, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN.

[journal]
path = "reminders.db"            # the SQLite journal (created mode 0600)

[practice]
name = "{name}"
timezone = "{timezone}"     # IANA zone; the default for appointments without their own
country = "US"                   # default region for phone numbers without a +country code
phone = "(312) 555-0100"         # shown in messages; leave empty to omit

# One reminder per rule, per channel the appointment has a contact for.
# before: "Nd" = N calendar days earlier at the same local time; "Nh"/"Nm" = elapsed time.
# max_late (optional): how late it may still go out; default half the lead time, at most 12h.
[[rules]]
name = "day-before"
before = "1d"
channels = ["email", "sms"]

[[rules]]
name = "two-hours"
before = "2h"
channels = ["sms"]

[email]
transport = "outbox"             # "outbox" (files in [outbox] dir) or "smtp"
from = "{name} <reminders@clinic.example>"
# host = "127.0.0.1"
# port = 587
# username = "reminders@clinic.example"   # password: env SMTP_PASSWORD
# starttls = true                # or ssl = true for port 465
# timeout = 30                   # seconds

[sms]
transport = "outbox"             # "outbox" or "twilio"
from_number = "+13125550100"

[outbox]
dir = "outbox"                   # one file per message: .eml (email) and .json (SMS)

[delivery]
workers = 8                      # parallel provider calls
max_attempts = 5                 # transient failures are retried with backoff up to this
cron_interval = "5m"             # how often cron runs send-due; the first retry waits this long
time_budget = "240s"             # send-due stops claiming new work after this
stale_lock_after = "30m"         # a lock held longer is reported (exit 75)
"""

DEMO_PEOPLE = [
    # (name, email, phone, hours from now, status, location, clinician)
    (
        "Avery Lindqvist",
        "avery@patients.example",
        "(312) 555-0142",
        20,
        "scheduled",
        "Room 2",
        "Dr. Okafor",
    ),
    ("Brook Tanaka", "brook@patients.example", "", 21, "scheduled", "Room 1", "Dr. Okafor"),
    ("Cam Ferreira", "", "+1 312 555 0177", 22, "scheduled", "Room 2", "Dr. Patel"),
    (
        "Dana O'Connell",
        "dana@patients.example",
        "312.555.0190",
        1.5,
        "scheduled",
        "Telehealth",
        "Dr. Patel",
    ),
    (
        "Émile Durand",
        "emile@patients.example",
        "+1-312-555-0111",
        19,
        "cancelled",
        "Room 3",
        "Dr. Okafor",
    ),
    (
        "Fatima Al-Sayed",
        "fatima@patients.example",
        "3125550123",
        23,
        "scheduled",
        "Room 1",
        "Dr. Nguyen",
    ),
    (
        "Gus Halvorsen",
        "gus@patients.example",
        "(312) 555-0166",
        30,
        "scheduled",
        "Room 2",
        "Dr. Nguyen",
    ),
    ("Hana Kowalczyk", "hana@patients.example", "", 44, "scheduled", "Telehealth", "Dr. Patel"),
    (
        "Ines Mbeki",
        "ines@patients.example",
        "+1 (212) 555-0148",
        50,
        "scheduled",
        "Telehealth",
        "Dr. Okafor",
    ),
    (
        "Jonah Weiss",
        "jonah@patients.example",
        "(312) 555-0109",
        52,
        "cancelled",
        "Room 1",
        "Dr. Nguyen",
    ),
    ("Kiri Te Ao", "kiri@patients.example", "", 70, "scheduled", "Telehealth", "Dr. Patel"),
    (
        "Lúcia Gonçalves",
        "lucia@patients.example",
        "(312) 555-0135",
        74,
        "scheduled",
        "Room 3",
        "Dr. Okafor",
    ),
    (
        "Mateo Rossi",
        "mateo@patients.example",
        "(312) 555-0156",
        96,
        "scheduled",
        "Room 1",
        "Dr. Patel",
    ),
    (
        "Nora Haddad",
        "nora@patients.example",
        "(312) 555-0181",
        98,
        "scheduled",
        "Room 2",
        "Dr. Nguyen",
    ),
    ("Omar Farouk", "omar@patients.example", "", 100, "scheduled", "Room 3", "Dr. Okafor"),
    (
        "Priya Raman",
        "priya@patients.example",
        "(312) 555-0127",
        120,
        "scheduled",
        "Telehealth",
        "Dr. Patel",
    ),
    (
        "Quinn Byrne",
        "quinn@patients.example",
        "(312) 555-0193",
        122,
        "scheduled",
        "Room 1",
        "Dr. Nguyen",
    ),
    (
        "Rosa Jiménez",
        "rosa@patients.example",
        "(312) 555-0114",
        0.5,
        "scheduled",
        "Room 2",
        "Dr. Okafor",
    ),
    (
        "Sam Whitfield",
        "sam@patients.example",
        "(312) 555-0175",
        140,
        "scheduled",
        "Room 3",
        "Dr. Patel",
    ),
    ("", "tess@patients.example", "", 21.5, "scheduled", "Room 1", "Dr. Nguyen"),
]


def write_config(directory: Path, name: str, timezone: str) -> Path:
    """Write `reminder.toml` in `directory` (refusing to overwrite one)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "reminder.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(CONFIG_TEMPLATE.format(name=name, timezone=timezone))
    return path


def write_demo_csv(path: Path, now: datetime, timezone: str) -> Path:
    """A CSV of sample appointments around `now`, on the quarter hour, local time."""
    zone = ZoneInfo(timezone)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "appointment_id",
                "name",
                "email",
                "phone",
                "starts_at",
                "timezone",
                "status",
                "location",
                "clinician",
            ]
        )
        for number, person in enumerate(DEMO_PEOPLE, start=1):
            name, email, phone, hours, status, location, clinician = person
            start = (now + timedelta(hours=hours)).astimezone(zone)
            start = start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)
            out.writerow(
                [
                    f"DEMO-{number:03}",
                    name,
                    email,
                    phone,
                    start.isoformat(timespec="minutes"),
                    timezone,
                    status,
                    location,
                    clinician,
                ]
            )
    return path
