"""reminder_cli.planner across daylight-saving changes, as pure functions.

Expected instants are worked out by hand. America/Chicago is UTC-6 (CST) in winter and UTC-5
(CDT) in summer; in 2027 clocks spring forward on Sunday March 14 (02:00 CST -> 03:00 CDT) and
fall back on Sunday November 7 (02:00 CDT -> 01:00 CST).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reminder_cli.config import default_max_late
from reminder_cli.models import Appointment, Rule
from reminder_cli.planner import due_time, expiry_time, plan_reminders
from reminder_cli.rails import QuietHours

CHICAGO = ZoneInfo("America/Chicago")
ZONES = [
    "America/Chicago",
    "America/New_York",
    "America/St_Johns",  # half-hour offset
    "America/Santiago",  # southern hemisphere, changes at midnight
    "Europe/London",
    "Europe/Dublin",  # "negative" daylight saving in the tz database
    "Africa/Casablanca",  # leaves summer time for Ramadan
    "Asia/Kolkata",  # no daylight saving
    "Australia/Lord_Howe",  # a 30-minute change
    "Pacific/Auckland",
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Apia",  # skipped a whole day, 2011-12-30
    "UTC",
]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def rule(before: str, max_late: timedelta = timedelta(hours=12)) -> Rule:
    return Rule(f"rule-{before}", int(before[:-1]), before[-1], ("email", "sms"), max_late)


def wall(moment: datetime, zone: ZoneInfo = CHICAGO) -> datetime:
    """The local wall-clock time of an instant, without its zone."""
    return moment.astimezone(zone).replace(tzinfo=None)


def exists(naive: datetime, zone: ZoneInfo) -> bool:
    """Whether a local wall-clock time occurs in the zone (either occurrence of a fold)."""
    return any(
        naive.replace(tzinfo=zone, fold=fold).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        == naive
        for fold in (0, 1)
    )


# -- calendar-day rules keep the wall-clock time ------------------------------------------------


@pytest.mark.parametrize(
    ("starts_at", "before", "due"),
    [
        # Sunday 2027-03-14 09:00 CDT = 14:00Z; a day earlier 09:00 CST = 15:00Z (23 h earlier)
        (utc(2027, 3, 14, 14), "1d", utc(2027, 3, 13, 15)),
        # Monday 2027-03-15 09:00 CDT = 14:00Z; two days earlier 09:00 CST = 15:00Z (47 h)
        (utc(2027, 3, 15, 14), "2d", utc(2027, 3, 13, 15)),
        # Monday 2027-03-15 09:00 CDT; one day earlier is already CDT: 14:00Z (24 h)
        (utc(2027, 3, 15, 14), "1d", utc(2027, 3, 14, 14)),
        # Sunday 2027-11-07 09:00 CST = 15:00Z; a day earlier 09:00 CDT = 14:00Z (25 h earlier)
        (utc(2027, 11, 7, 15), "1d", utc(2027, 11, 6, 14)),
        # Monday 2027-11-08 09:00 CST = 15:00Z; two days earlier 09:00 CDT = 14:00Z (49 h)
        (utc(2027, 11, 8, 15), "2d", utc(2027, 11, 6, 14)),
        # Monday 2027-11-08 09:00 CST; one day earlier is already CST: 15:00Z (24 h)
        (utc(2027, 11, 8, 15), "1d", utc(2027, 11, 7, 15)),
    ],
)
def test_a_calendar_day_rule_keeps_the_local_wall_clock_time_across_a_dst_change(
    starts_at: datetime, before: str, due: datetime
) -> None:
    assert due_time(starts_at, CHICAGO, rule(before)) == due
    assert wall(due).time() == wall(starts_at).time()


@pytest.mark.parametrize(
    ("starts_at", "before", "due", "local"),
    [
        # 09:00 CDT on March 14 = 14:00Z; 24 h earlier is 14:00Z on the 13th = 08:00 CST
        (utc(2027, 3, 14, 14), "24h", utc(2027, 3, 13, 14), datetime(2027, 3, 13, 8, 0)),
        (utc(2027, 3, 14, 14), "1440m", utc(2027, 3, 13, 14), datetime(2027, 3, 13, 8, 0)),
        # 09:00 CST on November 7 = 15:00Z; 24 h earlier is 15:00Z on the 6th = 10:00 CDT
        (utc(2027, 11, 7, 15), "24h", utc(2027, 11, 6, 15), datetime(2027, 11, 6, 10, 0)),
        # 09:00 CDT on March 15 = 14:00Z; 48 h earlier = 14:00Z on the 13th = 08:00 CST
        (utc(2027, 3, 15, 14), "48h", utc(2027, 3, 13, 14), datetime(2027, 3, 13, 8, 0)),
    ],
)
def test_an_hour_rule_keeps_elapsed_time_so_the_local_time_shifts_across_a_dst_change(
    starts_at: datetime, before: str, due: datetime, local: datetime
) -> None:
    assert due_time(starts_at, CHICAGO, rule(before)) == due
    assert wall(due) == local


def test_a_calendar_day_due_time_in_the_spring_forward_gap_moves_forward_by_the_gap() -> None:
    # 02:30 CDT on Monday March 15 = 07:30Z; a day earlier 02:30 does not exist (02:00 CST
    # jumps to 03:00 CDT), so it becomes 03:30 CDT = 08:30Z
    due = due_time(utc(2027, 3, 15, 7, 30), CHICAGO, rule("1d"))
    assert due == utc(2027, 3, 14, 8, 30)
    assert wall(due) == datetime(2027, 3, 14, 3, 30)


def test_a_calendar_day_due_time_in_the_fall_back_fold_is_the_first_occurrence() -> None:
    # 01:30 CST on Monday November 8 = 07:30Z; a day earlier 01:30 happens twice:
    # first as CDT (06:30Z), then as CST (07:30Z)
    assert due_time(utc(2027, 11, 8, 7, 30), CHICAGO, rule("1d")) == utc(2027, 11, 7, 6, 30)


def test_a_calendar_day_rule_from_the_second_0130_goes_back_to_the_previous_day() -> None:
    # the second 01:30 on November 7 is CST = 07:30Z; a day earlier 01:30 CDT = 06:30Z
    assert due_time(utc(2027, 11, 7, 7, 30), CHICAGO, rule("1d")) == utc(2027, 11, 6, 6, 30)


def test_an_hour_rule_keeps_elapsed_time_for_a_start_given_in_local_time() -> None:
    starts_at = datetime(2027, 3, 14, 9, 0, tzinfo=CHICAGO)  # 09:00 CDT = 14:00Z
    assert due_time(starts_at, CHICAGO, rule("24h")) == utc(2027, 3, 13, 14)


# -- expiry ------------------------------------------------------------------------------------


def test_expiry_is_the_lateness_limit_after_the_due_time_when_that_comes_first() -> None:
    starts_at = utc(2027, 3, 14, 14)  # 09:00 CDT
    due = due_time(starts_at, CHICAGO, rule("1d"))  # 09:00 CST on the 13th = 15:00Z
    assert expiry_time(starts_at, due, rule("1d")) == utc(2027, 3, 14, 3)  # 15:00Z + 12 h


def test_expiry_is_the_appointments_start_when_that_comes_first() -> None:
    starts_at = utc(2027, 1, 12, 15)
    late = rule("2h", max_late=timedelta(hours=3))
    due = due_time(starts_at, CHICAGO, late)
    assert due == utc(2027, 1, 12, 13)
    assert expiry_time(starts_at, due, late) == starts_at


def test_expiry_accepts_a_start_given_in_local_time() -> None:
    starts_at = datetime(2027, 11, 7, 9, 0, tzinfo=CHICAGO)  # 09:00 CST = 15:00Z
    assert expiry_time(starts_at, utc(2027, 11, 7, 14), rule("2h")) == utc(2027, 11, 7, 15)


@pytest.mark.parametrize(
    ("before", "max_late"),
    [("1d", timedelta(hours=12)), ("3d", timedelta(hours=12)), ("2h", timedelta(hours=1)),
     ("30m", timedelta(minutes=15))],
)  # fmt: skip
def test_default_lateness_limit_is_half_the_lead_time_at_most_12_hours(
    before: str, max_late: timedelta
) -> None:
    assert default_max_late(int(before[:-1]), before[-1]) == max_late


# -- plan_reminders ----------------------------------------------------------------------------


def appointment(**changes: object) -> Appointment:
    values: dict[str, object] = dict(
        id="MS-1", name="Avery", email="avery@patients.example", phone="+13125550142",
        starts_at=utc(2027, 3, 14, 14), timezone="America/Chicago",
    )  # fmt: skip
    values.update(changes)
    return Appointment(**values)  # type: ignore[arg-type]


def test_plan_has_one_reminder_per_rule_and_channel_with_a_contact() -> None:
    rules = (rule("1d"), Rule("two-hours", 2, "h", ("sms",), timedelta(hours=1)))
    planned = plan_reminders(appointment(email=None), rules)
    assert [(p.rule, p.channel, p.recipient, p.due_at) for p in planned] == [
        ("rule-1d", "sms", "+13125550142", utc(2027, 3, 13, 15)),
        ("two-hours", "sms", "+13125550142", utc(2027, 3, 14, 12)),
    ]


def test_plan_leaves_out_sms_for_a_number_that_cannot_take_it() -> None:
    planned = plan_reminders(appointment(sms_ok=False), (rule("1d"),))
    assert [p.channel for p in planned] == ["email"]


def test_plan_for_a_cancelled_appointment_is_empty() -> None:
    assert plan_reminders(appointment(status="cancelled"), (rule("1d"),)) == []


def test_plan_uses_the_appointments_own_time_zone() -> None:
    # 12:00 NZDT (UTC+13) on January 14 = 23:00Z on the 13th; a day earlier = 23:00Z on the 12th
    kiri = appointment(starts_at=utc(2027, 1, 13, 23), timezone="Pacific/Auckland")
    assert {p.due_at for p in plan_reminders(kiri, (rule("1d"),))} == {utc(2027, 1, 12, 23)}


def test_plan_moves_an_sms_due_in_quiet_hours_to_before_they_begin_but_keeps_its_expiry() -> None:
    # 07:30 CST on January 14 = 13:30Z; due 07:30 CST on the 13th, inside 21:00-08:00, so it
    # moves to 30 minutes before 21:00 CST on the 12th: 20:30 CST = 02:30Z on the 13th
    early = appointment(starts_at=utc(2027, 1, 14, 13, 30))
    planned = {p.channel: p for p in plan_reminders(early, (rule("1d"),), QuietHours())}
    assert planned["email"].due_at == utc(2027, 1, 13, 13, 30)
    assert planned["sms"].due_at == utc(2027, 1, 13, 2, 30)
    assert planned["sms"].expires_at == planned["email"].expires_at == utc(2027, 1, 14, 1, 30)


# -- properties --------------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
)
zones = st.sampled_from(ZONES).map(ZoneInfo)
day_rules = st.integers(1, 14).map(lambda n: rule(f"{n}d"))
elapsed_rules = st.one_of(
    st.integers(1, 96).map(lambda n: rule(f"{n}h")),
    st.integers(1, 3000).map(lambda n: rule(f"{n}m")),
)


@given(starts_at=starts, zone=zones, rule=st.one_of(day_rules, elapsed_rules))
def test_due_time_is_never_after_the_start(starts_at: datetime, zone: ZoneInfo, rule: Rule) -> None:
    due = due_time(starts_at, zone, rule)
    assert due <= starts_at
    assert due.utcoffset() == timedelta(0)


@given(starts_at=starts, zone=zones, rule=day_rules)
def test_a_calendar_day_rule_keeps_the_wall_clock_time_when_it_exists(
    starts_at: datetime, zone: ZoneInfo, rule: Rule
) -> None:
    target = wall(starts_at, zone) - timedelta(days=rule.amount)
    due = due_time(starts_at, zone, rule)
    if exists(target, zone):
        assert wall(due, zone) == target
        first = target.replace(tzinfo=zone, fold=0).astimezone(UTC)
        second = target.replace(tzinfo=zone, fold=1).astimezone(UTC)
        assert due == min(first, second)
    else:  # in a gap: later on the clock, never earlier, by at most the gap (a day, in Apia)
        assert timedelta(0) < wall(due, zone) - target <= timedelta(days=1)


@given(starts_at=starts, zone=zones, rule=elapsed_rules)
def test_an_hour_or_minute_rule_keeps_the_elapsed_time(
    starts_at: datetime, zone: ZoneInfo, rule: Rule
) -> None:
    assert starts_at - due_time(starts_at, zone, rule) == rule.lead


@given(starts_at=starts, zone=zones, rule=st.one_of(day_rules, elapsed_rules))
def test_expiry_lies_between_the_due_time_and_the_start(
    starts_at: datetime, zone: ZoneInfo, rule: Rule
) -> None:
    due = due_time(starts_at, zone, rule)
    expiry = expiry_time(starts_at, due, rule)
    assert due <= expiry <= starts_at
    assert expiry in (starts_at, due + rule.max_late)
