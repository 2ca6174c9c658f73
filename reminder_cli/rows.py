"""Reads appointment CSV exports and checks every row; pure apart from reading the file.

Each problem names the line, the column and the reason; nothing is written here.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from reminder_cli.config import check_zone
from reminder_cli.contacts import normalise_email, normalise_phone
from reminder_cli.errors import InputError, RowProblem
from reminder_cli.models import Appointment
from reminder_cli.planner import is_gap, resolve_local

REQUIRED = ("appointment_id", "name", "starts_at")
OPTIONAL = ("email", "phone", "timezone", "status", "location", "clinician")
EXTRA = "\0extra"  # key under which a row's surplus field count is kept
STATUSES = {
    "scheduled": "scheduled",
    "": "scheduled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}


@dataclass(frozen=True)
class Defaults:
    timezone: str
    country: str
    plan_signature: str = ""  # the rules and quiet hours: a change re-plans every row


@dataclass(frozen=True)
class Row:
    """One data row: its first line in the file and its values by column."""

    line: int
    values: dict[str, str]


# Header names as exports spell them, compared without case, spaces or punctuation.
ALIASES = {
    "appointmentid": "appointment_id", "appointment": "appointment_id", "apptid": "appointment_id",
    "name": "name", "patient": "name", "patientname": "name",
    "email": "email", "emailaddress": "email",
    "phone": "phone", "phonenumber": "phone", "mobile": "phone", "mobilephone": "phone",
    "cellphone": "phone",
    "startsat": "starts_at", "start": "starts_at", "starttime": "starts_at",
    "timezone": "timezone", "tz": "timezone", "zone": "timezone",
    "status": "status", "location": "location", "room": "location",
    "clinician": "clinician", "provider": "clinician", "doctor": "clinician",
}  # fmt: skip


def column_name(header: str) -> str | None:
    """The column a header names, or None if it is not one we know."""
    return ALIASES.get(re.sub(r"[^0-9a-z]", "", header.lower()))


def read_rows(path: Path, encoding: str, notes: list[str] | None = None) -> Iterator[Row]:
    """The data rows of a CSV file; InputError for a header or encoding problem. Header
    columns it does not know are named in `notes` and ignored."""
    name = str(path)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(name, [], f"{name}: unknown encoding {encoding!r}") from None
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # accept the byte-order mark spreadsheet programs write
    try:
        with path.open(encoding=encoding, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InputError(name, [], f"{name}: the file is empty; expected a header row")
            known = [column_name(h) for h in header]
            unknown = [h for h, c in zip(header, known, strict=True) if c is None and h.strip()]
            if unknown and notes is not None:
                notes.append(f"{name}:1: ignored column(s) {', '.join(map(repr, unknown))}")
            twice = {c for c in known if c and known.count(c) > 1}
            if twice:
                raise InputError(
                    name,
                    [RowProblem(1, "", f"column {sorted(twice)[0]} appears twice")],
                    f"{name}:1: two header columns mean {sorted(twice)[0]}; nothing imported",
                )
            columns = [c or f"\0ignored{i}" for i, c in enumerate(known)]
            missing = [c for c in REQUIRED if c not in columns]
            if missing or not {"email", "phone"} & set(columns):
                need = missing + ([] if {"email", "phone"} & set(columns) else ["email or phone"])
                raise InputError(
                    name,
                    [RowProblem(1, "", f"missing column(s): {', '.join(need)}")],
                    f"{name}:1: the header lacks {', '.join(need)}; nothing imported",
                )
            line = reader.line_num + 1
            for fields in reader:
                if any(f.strip() for f in fields):
                    values = dict(zip(columns, fields, strict=False))
                    if len(fields) > len(header):
                        values[EXTRA] = str(len(fields) - len(header))
                    yield Row(line, values)
                line = reader.line_num + 1
    except UnicodeError as exc:
        where = f" (byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else ""
        raise InputError(
            name,
            [],
            f"{name}: not valid {encoding}{where}; give the file's encoding with --encoding "
            "(spreadsheets often save cp1252; utf-16 files need a byte-order mark)",
        ) from None
    except csv.Error as exc:
        raise InputError(name, [], f"{name}: not a readable CSV file: {exc}") from None
    except OSError as exc:
        raise InputError(name, [], f"{name}: cannot read it: {exc.strerror}") from None


def source_hash(row: Row, defaults: Defaults) -> str:
    """A fingerprint of a row as given (with the defaults it depends on)."""
    known = {k: v for k, v in row.values.items() if k in REQUIRED or k in OPTIONAL}
    data = json.dumps(
        [known, defaults.timezone, defaults.country, defaults.plan_signature], sort_keys=True
    )
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def parse_start(text: str, zone_name: str) -> datetime:
    """An ISO 8601 time as aware UTC; naive times are local wall-clock time in the zone."""
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw)
        if not 1900 < moment.year < 2200:
            raise ValueError
    except ValueError:
        raise ValueError(f"{raw!r} is not an ISO 8601 time like 2027-01-12T09:00") from None
    if len(raw) <= 10:
        raise ValueError(f"{raw!r} has a date but no time of day")
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    zone = check_zone(zone_name)
    if is_gap(moment, zone):
        raise ValueError(
            f"{raw} does not exist in {zone_name} (clocks skip it for daylight saving); "
            "fix the time or give an offset"
        )
    return resolve_local(moment, zone)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _printable(text: str) -> str:
    """A field without control characters (terminal escapes, stray newlines): a space each."""
    return " ".join(_CONTROL.sub(" ", text).split())


def check_row(row: Row, defaults: Defaults) -> Appointment | list[RowProblem]:
    """The appointment a row describes, or every problem it has."""
    v = {k: _printable(row.values.get(k) or "") for k in REQUIRED + OPTIONAL}
    problems: list[RowProblem] = []

    def problem(column: str, reason: str) -> None:
        problems.append(RowProblem(row.line, column, reason))

    if EXTRA in row.values:
        problem("", f"{row.values[EXTRA]} more field(s) than the header (an unquoted comma?)")
    if not v["appointment_id"]:
        problem("appointment_id", "missing: every row needs the practice system's id")
    email = phone = None
    sms_problem = ""
    if v["email"]:
        try:
            email = normalise_email(v["email"])
        except ValueError as exc:
            problem("email", str(exc))
    if v["phone"]:
        try:
            phone, sms_problem = normalise_phone(v["phone"], defaults.country)
        except ValueError as exc:
            problem("phone", str(exc))
    if not v["email"] and not v["phone"]:
        problem("email", "no contact: give an email address or a phone number")
    zone_name = v["timezone"] or defaults.timezone
    try:
        check_zone(zone_name)
    except ValueError as exc:
        problem("timezone", str(exc))
        zone_name = ""
    starts_at = None
    if not v["starts_at"]:
        problem("starts_at", "missing: give the start time, like 2027-01-12T09:00")
    else:
        try:
            starts_at = parse_start(v["starts_at"], zone_name or defaults.timezone)
        except ValueError as exc:
            problem("starts_at", str(exc))
    status = STATUSES.get(v["status"].lower())
    if status is None:
        problem("status", f"{v['status']!r} is not a status (use scheduled or cancelled)")
    if problems or starts_at is None or status is None:
        return problems
    return Appointment(
        id=v["appointment_id"],
        name=v["name"],
        email=email,
        phone=phone,
        starts_at=starts_at,
        timezone=zone_name,
        status=status,
        location=v["location"],
        clinician=v["clinician"],
        sms_ok=not sms_problem,
        sms_problem=sms_problem,
    )


def with_hash(appointment: Appointment, digest: str) -> Appointment:
    return replace(appointment, source_hash=digest)
