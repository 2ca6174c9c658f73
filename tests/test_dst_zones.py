"""Daylight saving and time zones: appointments around both 2027 changes in New York, London and
Sydney, and in Kolkata (UTC+05:30, no DST), imported through the CLI; then property-based
tests of the planner.

The expected instants are worked out by hand from the zones' known offsets and 2027 changes:
- America/New_York: EST UTC-5, EDT UTC-4. Spring forward 2027-03-14 02:00 EST -> 03:00 EDT
  (07:00Z; 02:00-02:59 local does not exist). Fall back 2027-11-07 02:00 EDT -> 01:00 EST
  (06:00Z; 01:00-01:59 local happens twice).
- Europe/London: GMT UTC+0, BST UTC+1. Forward 2027-03-28 01:00 GMT -> 02:00 BST (01:00Z);
  back 2027-10-31 02:00 BST -> 01:00 GMT (01:00Z).
- Australia/Sydney: AEST UTC+10, AEDT UTC+11. Back 2027-04-04 03:00 AEDT -> 02:00 AEST
  (2027-04-03 16:00Z; 02:00-02:59 twice); forward 2027-10-03 02:00 AEST -> 03:00 AEDT
  (2027-10-02 16:00Z; 02:00-02:59 does not exist).
- Asia/Kolkata: IST UTC+05:30 all year.
Rules: "1d" is the same local wall-clock time a calendar day earlier (a time in a gap moves
forward past it, a time in a fold is its first occurrence); "2h" is two elapsed hours earlier.
Default lateness limits: 12 h for "1d", 1 h for "2h".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from reminder_cli.models import Appointment, PlannedReminder, Rule
from reminder_cli.planner import plan_reminders
from reminder_cli.rails import QuietHours
from tests.conftest import NOW, invoke, write_config
from tests.rails_support import appt, iso, query, reminder_by, utc, write_csv

NY, LONDON, SYDNEY, KOLKATA = (
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
)
RULES = """\
[[rules]]
name = "day-before"
before = "1d"
channels = ["email"]

[[rules]]
name = "two-hours"
before = "2h"
channels = ["email"]
"""
H = timedelta(hours=1)

# (id, starts_at as written, zone, start UTC, 1d due UTC, 2h due UTC)
CASES = [
    # New York, spring forward (Sunday 14 March)
    ("NY-S-after", "2027-03-14T10:00", NY,
     utc(2027, 3, 14, 14), utc(2027, 3, 13, 15), utc(2027, 3, 14, 12)),  # 1d is 23 h before
    ("NY-S-2h-over-gap", "2027-03-14T03:30", NY,
     utc(2027, 3, 14, 7, 30), utc(2027, 3, 13, 8, 30), utc(2027, 3, 14, 5, 30)),  # 00:30 EST
    ("NY-S-1d-in-gap", "2027-03-15T02:30", NY,  # 1d: 02:30 on the 14th -> 03:30 EDT
     utc(2027, 3, 15, 6, 30), utc(2027, 3, 14, 7, 30), utc(2027, 3, 15, 4, 30)),
    ("NY-S-offset", "2027-03-14T02:30-05:00", NY,  # an instant: 03:30 EDT
     utc(2027, 3, 14, 7, 30), utc(2027, 3, 13, 8, 30), utc(2027, 3, 14, 5, 30)),
    ("NY-S-just-before", "2027-03-14T01:59", NY,
     utc(2027, 3, 14, 6, 59), utc(2027, 3, 13, 6, 59), utc(2027, 3, 14, 4, 59)),
    ("NY-S-gap-end", "2027-03-14T03:00", NY,
     utc(2027, 3, 14, 7), utc(2027, 3, 13, 8), utc(2027, 3, 14, 5)),
    # New York, fall back (Sunday 7 November)
    ("NY-F-fold", "2027-11-07T01:30", NY,  # first occurrence, EDT
     utc(2027, 11, 7, 5, 30), utc(2027, 11, 6, 5, 30), utc(2027, 11, 7, 3, 30)),
    ("NY-F-fold-offset", "2027-11-07T01:30-05:00", NY,  # second occurrence, EST
     utc(2027, 11, 7, 6, 30), utc(2027, 11, 6, 5, 30), utc(2027, 11, 7, 4, 30)),
    ("NY-F-fold-start", "2027-11-07T01:00", NY,
     utc(2027, 11, 7, 5), utc(2027, 11, 6, 5), utc(2027, 11, 7, 3)),
    ("NY-F-fold-end", "2027-11-07T02:00", NY,  # happens once, EST
     utc(2027, 11, 7, 7), utc(2027, 11, 6, 6), utc(2027, 11, 7, 5)),
    ("NY-F-after", "2027-11-07T10:00", NY,  # 1d is 25 h before
     utc(2027, 11, 7, 15), utc(2027, 11, 6, 14), utc(2027, 11, 7, 13)),
    ("NY-F-1d-in-fold", "2027-11-08T01:30", NY,  # 1d: 01:30 on the 7th, first = EDT
     utc(2027, 11, 8, 6, 30), utc(2027, 11, 7, 5, 30), utc(2027, 11, 8, 4, 30)),
    # London, spring forward (Sunday 28 March)
    ("LN-S-after", "2027-03-28T10:00", LONDON,
     utc(2027, 3, 28, 9), utc(2027, 3, 27, 10), utc(2027, 3, 28, 7)),
    ("LN-S-1d-in-gap", "2027-03-29T01:30", LONDON,  # 1d: 01:30 on the 28th -> 02:30 BST
     utc(2027, 3, 29, 0, 30), utc(2027, 3, 28, 1, 30), utc(2027, 3, 28, 22, 30)),
    # London, fall back (Sunday 31 October)
    ("LN-F-fold", "2027-10-31T01:30", LONDON,
     utc(2027, 10, 31, 0, 30), utc(2027, 10, 30, 0, 30), utc(2027, 10, 30, 22, 30)),
    ("LN-F-fold-offset", "2027-10-31T01:30+00:00", LONDON,
     utc(2027, 10, 31, 1, 30), utc(2027, 10, 30, 0, 30), utc(2027, 10, 30, 23, 30)),
    ("LN-F-after", "2027-10-31T10:00", LONDON,
     utc(2027, 10, 31, 10), utc(2027, 10, 30, 9), utc(2027, 10, 31, 8)),
    ("LN-F-1d-in-fold", "2027-11-01T01:30", LONDON,
     utc(2027, 11, 1, 1, 30), utc(2027, 10, 31, 0, 30), utc(2027, 10, 31, 23, 30)),
    # Sydney, fall back (Sunday 4 April)
    ("SY-F-after", "2027-04-04T10:00", SYDNEY,  # 1d is 25 h before
     utc(2027, 4, 4, 0), utc(2027, 4, 2, 23), utc(2027, 4, 3, 22)),
    ("SY-F-fold", "2027-04-04T02:30", SYDNEY,  # first occurrence, AEDT
     utc(2027, 4, 3, 15, 30), utc(2027, 4, 2, 15, 30), utc(2027, 4, 3, 13, 30)),
    ("SY-F-fold-offset", "2027-04-04T02:30+10:00", SYDNEY,  # second occurrence, AEST
     utc(2027, 4, 3, 16, 30), utc(2027, 4, 2, 15, 30), utc(2027, 4, 3, 14, 30)),
    ("SY-F-1d-in-fold", "2027-04-05T02:30", SYDNEY,
     utc(2027, 4, 4, 16, 30), utc(2027, 4, 3, 15, 30), utc(2027, 4, 4, 14, 30)),
    # Sydney, spring forward (Sunday 3 October)
    ("SY-S-after", "2027-10-03T10:00", SYDNEY,  # 1d is 23 h before
     utc(2027, 10, 2, 23), utc(2027, 10, 2, 0), utc(2027, 10, 2, 21)),
    ("SY-S-1d-in-gap", "2027-10-04T02:30", SYDNEY,  # 1d: 02:30 on the 3rd -> 03:30 AEDT
     utc(2027, 10, 3, 15, 30), utc(2027, 10, 2, 16, 30), utc(2027, 10, 3, 13, 30)),
    # Kolkata: the same wall-clock times are ordinary there
    ("IN-NY-gap", "2027-03-14T02:30", KOLKATA,
     utc(2027, 3, 13, 21), utc(2027, 3, 12, 21), utc(2027, 3, 13, 19)),
    ("IN-NY-fold", "2027-11-07T01:30", KOLKATA,
     utc(2027, 11, 6, 20), utc(2027, 11, 5, 20), utc(2027, 11, 6, 18)),
    ("IN-SY-fold", "2027-04-04T02:30", KOLKATA,
     utc(2027, 4, 3, 21), utc(2027, 4, 2, 21), utc(2027, 4, 3, 19)),
    ("IN-SY-gap", "2027-10-03T02:30", KOLKATA,
     utc(2027, 10, 2, 21), utc(2027, 10, 1, 21), utc(2027, 10, 2, 19)),
]  # fmt: skip


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case imported once (in January: all of them still ahead); the journal's path."""
    directory = tmp_path_factory.mktemp("dst")
    config = write_config(directory, rules=RULES)
    rows = [appt(c[0], c[1], c[2], email=f"{c[0].lower()}@patients.example") for c in CASES]
    with freeze_time(NOW):
        result = invoke(config, "import", str(write_csv(directory / "dst.csv", rows)))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return directory / "reminders.db"


@pytest.mark.parametrize(
    ("appointment_id", "written", "zone", "start", "day_before", "two_hours"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_import_plans_1d_by_wall_clock_and_2h_by_elapsed_time_around_dst(
    planned: Path,
    appointment_id: str,
    written: str,
    zone: str,
    start: datetime,
    day_before: datetime,
    two_hours: datetime,
) -> None:
    (stored,) = query(planned, "SELECT * FROM appointments WHERE id = ?", [appointment_id])
    assert (stored["starts_at"], stored["timezone"]) == (iso(start), zone)
    d = reminder_by(planned, appointment_id, "day-before", "email")
    h = reminder_by(planned, appointment_id, "two-hours", "email")
    assert (d["due_at"], d["expires_at"], d["state"]) == (
        iso(day_before),
        iso(day_before + 12 * H),
        "pending",
    )
    assert (h["due_at"], h["expires_at"], h["state"]) == (
        iso(two_hours),
        iso(two_hours + H),
        "pending",
    )


def test_a_local_time_in_a_spring_forward_gap_is_an_invalid_row_and_nothing_is_imported(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, rules=RULES)
    rows = [
        appt("OK-1", "2027-03-14T03:00", NY, email="ok1@patients.example"),
        appt("NY-GAP", "2027-03-14T02:30", NY, email="a@patients.example"),
        appt("NY-GAP-START", "2027-03-14T02:00", NY, email="b@patients.example"),
        appt("LN-GAP", "2027-03-28T01:30", LONDON, email="c@patients.example"),
        appt("SY-GAP", "2027-10-03T02:59", SYDNEY, email="d@patients.example"),
        appt("OK-2", "2027-10-03T02:30", KOLKATA, email="ok2@patients.example"),
    ]
    path = write_csv(tmp_path / "gaps.csv", rows)
    with freeze_time(NOW):
        result = invoke(config, "import", str(path))
    assert result.exit_code == 2, result.output
    skipped = "(clocks skip it for daylight saving); fix the time or give an offset"
    assert result.stderr.splitlines() == [
        f"{path}:3: starts_at: 2027-03-14T02:30 does not exist in {NY} {skipped}",
        f"{path}:4: starts_at: 2027-03-14T02:00 does not exist in {NY} {skipped}",
        f"{path}:5: starts_at: 2027-03-28T01:30 does not exist in {LONDON} {skipped}",
        f"{path}:6: starts_at: 2027-10-03T02:59 does not exist in {SYDNEY} {skipped}",
        f"{path}: 4 invalid row(s); nothing imported (fix them, or import the rest with "
        "--skip-invalid)",
    ]
    db = tmp_path / "reminders.db"
    assert query(db, "SELECT id FROM appointments") == []

    with freeze_time(NOW):
        result = invoke(config, "import", "--skip-invalid", str(path))
    assert result.exit_code == 1, result.output
    assert query(db, "SELECT id, starts_at FROM appointments ORDER BY id") == [
        {"id": "OK-1", "starts_at": "2027-03-14T07:00:00+00:00"},
        {"id": "OK-2", "starts_at": "2027-10-02T21:00:00+00:00"},
    ]


@pytest.mark.parametrize(
    ("zone", "before", "after", "old_due", "new_due"),
    [
        # NY: Saturday 13 March 09:00 EST (14:00Z) -> Monday 15 March 09:00 EDT (13:00Z).
        # The new day-before is Sunday 14 March 09:00 EDT = 13:00Z.
        (NY, "2027-03-13T09:00", "2027-03-15T09:00", utc(2027, 3, 12, 14), utc(2027, 3, 14, 13)),
        # Sydney: Saturday 3 April 09:00 AEDT (22:00Z on the 2nd) -> Monday 5 April 09:00 AEST
        # (23:00Z on the 4th). New day-before: Sunday 4 April 09:00 AEST = 23:00Z on the 3rd.
        (SYDNEY, "2027-04-03T09:00", "2027-04-05T09:00", utc(2027, 4, 1, 22), utc(2027, 4, 3, 23)),
    ],
)
def test_an_appointment_moved_across_a_dst_change_is_replanned_in_the_new_offset(
    tmp_path: Path, zone: str, before: str, after: str, old_due: datetime, new_due: datetime
) -> None:
    config = write_config(tmp_path, rules=RULES)
    db = tmp_path / "reminders.db"
    for when, version in [(before, "v1"), (after, "v2")]:
        path = write_csv(
            tmp_path / f"{version}.csv", [appt("MV", when, zone, email="mv@patients.example")]
        )
        with freeze_time(NOW):
            result = invoke(config, "import", str(path))
        assert result.exit_code == 0, result.output
    rows = query(db, "SELECT rule, due_at, state FROM reminders WHERE rule = 'day-before'")
    assert sorted((r["due_at"], r["state"]) for r in rows) == [
        (iso(old_due), "cancelled"),
        (iso(new_due), "pending"),
    ]


# -- properties of the planner -------------------------------------------------------------

# Lord Howe moves its clocks by 30 minutes (UTC+10:30/+11); St John's is UTC-03:30/-02:30 on
# New York's dates; Kathmandu is UTC+05:45 all year.
TRANSITION_DAYS = {
    NY: [date(2027, 3, 14), date(2027, 11, 7)],
    LONDON: [date(2027, 3, 28), date(2027, 10, 31)],
    SYDNEY: [date(2027, 4, 4), date(2027, 10, 3)],
    "Australia/Lord_Howe": [date(2027, 4, 4), date(2027, 10, 3)],
    "America/St_Johns": [date(2027, 3, 14), date(2027, 11, 7)],
    KOLKATA: [date(2027, 3, 14)],
    "Asia/Kathmandu": [date(2027, 10, 3)],
}
ZONES = sorted(TRANSITION_DAYS)


@st.composite
def appointments_anytime(draw: st.DrawFn, days: int) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    start = draw(
        st.datetimes(
            min_value=datetime(2027, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
        )
    )
    return zone, start.replace(second=0, microsecond=0)


@st.composite
def appointments_near_dst(draw: st.DrawFn, days: int) -> tuple[str, datetime]:
    """An appointment whose wall-clock time `days` days earlier is between 01:00 and 02:59
    local on the night of a clock change: where the gaps and folds are."""
    zone = draw(st.sampled_from(ZONES))
    night = datetime.combine(draw(st.sampled_from(TRANSITION_DAYS[zone])), time(0))
    wall = night + timedelta(days=days, minutes=draw(st.integers(60, 3 * 60 - 1)))
    return zone, wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def appointments(days: int) -> st.SearchStrategy[tuple[str, datetime]]:
    return st.one_of(appointments_anytime(days), appointments_near_dst(days))


@st.composite
def cases(draw: st.DrawFn, units: str = "dhm") -> tuple[str, datetime, int, str]:
    unit = draw(st.sampled_from(units))
    amount = draw(st.integers(1, {"d": 14, "h": 72, "m": 600}[unit]))
    zone, start = draw(appointments(amount if unit == "d" else 0))
    return zone, start, amount, unit


def planned_for(
    start: datetime, zone: str, amount: int, unit: str, quiet: QuietHours | None
) -> list[PlannedReminder]:
    lead = {
        "d": timedelta(days=amount),
        "h": timedelta(hours=amount),
        "m": timedelta(minutes=amount),
    }[unit]
    rule = Rule("r", amount, unit, ("email", "sms"), min(lead / 2, 12 * H))
    appointment = Appointment("P", "Pat", "p@patients.example", "+12125550123", start, zone)
    return plan_reminders(appointment, (rule,), quiet)


def gap_length(naive: datetime, zone: ZoneInfo) -> timedelta | None:
    """How far the clocks jumped over `naive` if it does not exist there (else None)."""
    earlier = naive.replace(tzinfo=zone, fold=0)
    if earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return None
    before, after = earlier.utcoffset(), naive.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None
    return abs(after - before)


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_property_a_reminder_is_never_due_after_its_appointment_starts(
    case: tuple[str, datetime, int, str],
) -> None:
    zone, start, amount, unit = case
    for plan in planned_for(start, zone, amount, unit, QuietHours()):
        assert plan.due_at < start
        assert plan.due_at < plan.expires_at <= start


@settings(max_examples=200, deadline=None)
@given(case=cases("d"))
def test_property_nd_keeps_the_local_wall_clock_time(case: tuple[str, datetime, int, str]) -> None:
    zone, start, days, _ = case
    tz = ZoneInfo(zone)
    wall = start.astimezone(tz).replace(tzinfo=None) - timedelta(days=days)
    (email, _) = planned_for(start, zone, days, "d", None)
    jump = gap_length(wall, tz)
    if jump is None:  # it exists; if it happens twice, the first occurrence (earlier instant)
        assert email.due_at == min(wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
    else:  # skipped by the clocks: as far past the gap as the wall time was into it
        assert email.due_at.astimezone(tz).replace(tzinfo=None) == wall + jump


@settings(max_examples=200, deadline=None)
@given(case=cases("hm"))
def test_property_nh_and_nm_keep_the_elapsed_time(case: tuple[str, datetime, int, str]) -> None:
    zone, start, amount, unit = case
    (email, _) = planned_for(start, zone, amount, unit, None)
    assert start - email.due_at == timedelta(**{"hours" if unit == "h" else "minutes": amount})


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_property_a_planned_sms_is_never_due_inside_the_recipients_quiet_hours(
    case: tuple[str, datetime, int, str],
) -> None:
    zone, start, amount, unit = case
    (email, sms) = planned_for(start, zone, amount, unit, QuietHours())
    local = sms.due_at.astimezone(ZoneInfo(zone)).time()
    assert time(8, 0) <= local < time(21, 0)
    assert sms.due_at <= email.due_at
    assert sms.expires_at == email.expires_at
    if sms.due_at != email.due_at:  # moved: to 30 minutes before 21:00 local
        assert local == time(20, 30)
