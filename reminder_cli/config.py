"""Reads and checks `reminder.toml`: every problem names the file and the key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reminder_cli.errors import ConfigError
from reminder_cli.models import CHANNELS, Rule
from reminder_cli.rails import QuietHours

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE_BEFORE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_MAX_DEFAULT_LATE = timedelta(hours=12)


@dataclass(frozen=True)
class EmailConfig:
    transport: str = "outbox"
    sender: str = ""
    host: str = "127.0.0.1"
    port: int = 25
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0
    max_per_second: float = 0.0


@dataclass(frozen=True)
class SmsConfig:
    transport: str = "outbox"
    from_number: str = ""
    messaging_service_sid: str = ""
    account_sid: str = ""
    auth_token: str = field(default="", repr=False)
    api_base_url: str = ""
    status_callback: str = ""
    timeout: float = 15.0
    max_segments: int = 2
    max_per_second: float = 0.0


@dataclass(frozen=True)
class DeliveryConfig:
    workers: int = 8
    max_attempts: int = 5
    max_per_recipient_per_day: int = 3
    max_per_run: int = 0
    time_budget: float = 240.0
    cron_interval: timedelta = timedelta(minutes=5)
    stale_lock_after: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Config:
    path: Path
    journal_path: Path
    practice_name: str
    practice_phone: str
    timezone: str
    country: str
    rules: tuple[Rule, ...]
    email: EmailConfig
    sms: SmsConfig
    delivery: DeliveryConfig
    quiet_hours: QuietHours
    outbox_dir: Path
    templates_dir: Path | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def parse_duration(text: object) -> timedelta:
    """ "90s", "5m", "2h", "1d" (or a number of seconds) as a timedelta; ValueError if not."""
    if isinstance(text, bool):
        raise ValueError('expected a duration like "30m"')
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f'{text!r} is not a duration; write a number and a unit, like "30m"')
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def check_zone(name: str) -> ZoneInfo:
    """The zone of an IANA name; ValueError naming it if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like America/Chicago)")


class _Section:
    """One TOML table, read key by key so that every error names its key."""

    def __init__(self, path: Path, name: str, data: Any, known: set[str]) -> None:
        self.path, self.name = path, name
        if data is None:
            self.fail("", "missing table: add it (see `reminder init` for an example)")
        if not isinstance(data, dict):
            self.fail("", "must be a table")
        self.data: dict[str, Any] = data
        for key in data:
            if key not in known:
                choices = ", ".join(sorted(known))
                self.fail(key, f"unknown key (known keys here: {choices})")

    def fail(self, key: str, problem: str) -> None:
        where = f"{self.name}.{key}" if self.name and key else key or self.name
        raise ConfigError(str(self.path), where, problem)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.data.get(key, default)
        if value is None:
            self.fail(key, "missing key")
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.fail(key, "expected a number")
        if not isinstance(value, kind):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.fail(key, f"expected {names}, got {value!r}")
        return value

    def duration(self, key: str, default: str) -> timedelta:
        try:
            return parse_duration(self.data.get(key, default))
        except ValueError as exc:
            self.fail(key, str(exc))
            raise  # unreachable

    def whole(self, key: str, default: int) -> int:
        """A whole number >= 0 (0 meaning "off")."""
        value = self.get(key, int, default)
        if value < 0:
            self.fail(key, "must be a whole number >= 0 (0 turns it off)")
        return int(value)

    def positive(self, key: str, default: float, kind: type = float) -> Any:
        value = self.get(key, (int, float), default)
        if value < 0 or (kind is int and (value < 1 or value != int(value))):
            self.fail(
                key, f"must be a {'whole number of at least 1' if kind is int else 'number >= 0'}"
            )
        return kind(value)


def _clock_time(section: _Section, key: str, default: str) -> time:
    text = section.get(key, str, default)
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        section.fail(key, f'{text!r} is not a time of day like "21:00"')
        raise AssertionError  # unreachable
    return time(int(match[1]), int(match[2]))


def _quiet_hours(path: Path, raw: Any) -> QuietHours:
    s = _Section(path, "quiet_hours", raw, {"start", "end", "lead", "channels"})
    channels = s.get("channels", list, ["sms"])
    if any(c not in CHANNELS for c in channels):
        s.fail("channels", 'list "sms", "email", both, or none ([] turns quiet hours off)')
    return QuietHours(
        start=_clock_time(s, "start", "21:00"),
        end=_clock_time(s, "end", "08:00"),
        lead=s.duration("lead", "30m"),
        channels=tuple(channels),
    )


def default_max_late(amount: int, unit: str) -> timedelta:
    """Half the lead time, at most 12 hours: a day-before reminder may go out until 12 h late."""
    lead = {
        "d": timedelta(days=amount),
        "h": timedelta(hours=amount),
        "m": timedelta(minutes=amount),
    }
    return min(lead[unit] / 2, _MAX_DEFAULT_LATE)


def _rules(path: Path, raw: Any) -> tuple[Rule, ...]:
    if raw is None:
        raise ConfigError(str(path), "rules", "missing: add at least one [[rules]] table")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(str(path), "rules", "must be one or more [[rules]] tables")
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        section = _Section(
            path, f"rules[{index}]", item, {"name", "before", "channels", "max_late"}
        )
        name = section.get("name", str)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            section.fail("name", "use letters, digits, '-', '_' or '.' only")
        if any(r.name == name for r in rules):
            section.fail("name", f"rule name {name!r} is used twice")
        match = _RULE_BEFORE.match(section.get("before", str))
        if not match or int(match[1]) == 0:
            section.fail("before", 'write "Nd" (calendar days), "Nh" or "Nm", like "1d" or "2h"')
            raise AssertionError  # unreachable
        amount, unit = int(match[1]), match[2]
        channels = section.get("channels", list, ["email", "sms"])
        if (
            not channels
            or any(c not in CHANNELS for c in channels)
            or len(set(channels)) != len(channels)
        ):
            section.fail("channels", 'list one or both of "email" and "sms"')
        max_late = (
            section.duration("max_late", "0s")
            if "max_late" in section.data
            else default_max_late(amount, unit)
        )
        rules.append(Rule(name, amount, unit, tuple(channels), max_late))
    return tuple(rules)


def _email(path: Path, raw: Any, env: Mapping[str, str], needed: bool) -> EmailConfig:
    s = _Section(
        path,
        "email",
        raw,
        {"transport", "from", "host", "port", "username", "password", "starttls", "ssl", "timeout"}
        | {"max_per_second"},
    )
    transport = s.get("transport", str, "outbox")
    if transport not in ("outbox", "smtp"):
        s.fail("transport", f'unknown transport {transport!r} (choose "outbox" or "smtp")')
    sender = s.get("from", str, "" if not needed else None)
    if needed and "@" not in sender:
        s.fail("from", f'{sender!r} is not an address like "Clinic <reminders@clinic.example>"')
    config = EmailConfig(
        transport=transport,
        sender=sender,
        host=s.get("host", str, "127.0.0.1"),
        port=int(s.positive("port", 25, int)),
        username=s.get("username", str, ""),
        password=s.get("password", str, env.get("SMTP_PASSWORD", "")),
        starttls=s.get("starttls", bool, False),
        ssl=s.get("ssl", bool, False),
        timeout=s.positive("timeout", 30.0),
        max_per_second=s.positive("max_per_second", 0.0),
    )
    if config.starttls and config.ssl:
        s.fail("ssl", "choose either ssl (implicit TLS, port 465) or starttls, not both")
    if config.timeout == 0:
        s.fail("timeout", "must be more than 0 seconds")
    return config


def _sms(path: Path, raw: Any, env: Mapping[str, str]) -> SmsConfig:
    s = _Section(
        path,
        "sms",
        raw,
        {"transport", "from_number", "messaging_service_sid", "account_sid", "auth_token"}
        | {"api_base_url", "status_callback", "timeout", "max_segments", "max_per_second"},
    )
    transport = s.get("transport", str, "outbox")
    if transport not in ("outbox", "twilio"):
        s.fail("transport", f'unknown transport {transport!r} (choose "outbox" or "twilio")')
    config = SmsConfig(
        transport=transport,
        from_number=s.get("from_number", str, ""),
        messaging_service_sid=s.get("messaging_service_sid", str, ""),
        account_sid=s.get("account_sid", str, env.get("TWILIO_ACCOUNT_SID", "")),
        auth_token=s.get("auth_token", str, env.get("TWILIO_AUTH_TOKEN", "")),
        api_base_url=s.get("api_base_url", str, ""),
        status_callback=s.get("status_callback", str, ""),
        timeout=s.positive("timeout", 15.0),
        max_segments=int(s.positive("max_segments", 2, int)),
        max_per_second=s.positive("max_per_second", 0.0),
    )
    if config.timeout == 0:
        s.fail("timeout", "must be more than 0 seconds")
    return config


def _delivery(path: Path, raw: Any) -> DeliveryConfig:
    s = _Section(
        path,
        "delivery",
        raw,
        {"workers", "max_attempts", "time_budget", "cron_interval", "stale_lock_after"}
        | {"max_per_recipient_per_day", "max_per_run"},
    )
    return DeliveryConfig(
        workers=int(s.positive("workers", 8, int)),
        max_attempts=int(s.positive("max_attempts", 5, int)),
        max_per_recipient_per_day=int(s.whole("max_per_recipient_per_day", 3)),
        max_per_run=int(s.whole("max_per_run", 0)),
        time_budget=s.duration("time_budget", "240s").total_seconds(),
        cron_interval=s.duration("cron_interval", "5m"),
        stale_lock_after=s.duration("stale_lock_after", "30m"),
    )


SECRET_KEYS = (("email", "password"), ("sms", "auth_token"))


def _check_secrets_private(path: Path, data: dict[str, Any]) -> None:
    """A config file that holds a secret must be readable by its owner only."""
    for table, key in SECRET_KEYS:
        if isinstance(data.get(table), dict) and data[table].get(key):
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise ConfigError(
                    str(path), f"{table}.{key}",
                    f"a secret in a file others can read (mode {mode:04o}): run chmod 600 "
                    f"{path}, or move it to the environment",
                )  # fmt: skip


def load_config(path: Path, env: Mapping[str, str]) -> Config:
    """Read and check the config file; raise ConfigError naming the file and key."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "no such file (create one with `reminder init`)")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read it: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"not valid TOML: {exc}")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"not UTF-8 text (byte {exc.start}); save it as UTF-8")
    top = _Section(
        path,
        "",
        data,
        {"journal", "practice", "rules", "email", "sms", "outbox", "delivery", "quiet_hours"}
        | {"templates_dir"},
    )
    base = path.resolve().parent
    journal = _Section(path, "journal", data.get("journal", {}), {"path"})
    practice = _Section(
        path, "practice", data.get("practice"), {"name", "timezone", "country", "phone"}
    )
    timezone = practice.get("timezone", str)
    try:
        check_zone(timezone)
    except ValueError as exc:
        practice.fail("timezone", str(exc))
    country = practice.get("country", str, "US").upper()
    if not re.fullmatch(r"[A-Z]{2}", country):  # `import` checks it against phonenumbers
        practice.fail("country", f"{country!r} is not a two-letter region code like US")
    rules = _rules(path, data.get("rules"))
    uses_email = any("email" in r.channels for r in rules)
    outbox = _Section(path, "outbox", data.get("outbox", {}), {"dir"})
    templates_dir = top.get("templates_dir", str, "") or None
    config = Config(
        path=path,
        journal_path=base / journal.get("path", str, "reminders.db"),
        practice_name=practice.get("name", str),
        practice_phone=practice.get("phone", str, ""),
        timezone=timezone,
        country=country,
        rules=rules,
        email=_email(path, data.get("email", {}), env, uses_email),
        sms=_sms(path, data.get("sms", {}), env),
        delivery=_delivery(path, data.get("delivery", {})),
        quiet_hours=_quiet_hours(path, data.get("quiet_hours", {})),
        outbox_dir=base / outbox.get("dir", str, "outbox"),
        templates_dir=base / templates_dir if templates_dir else None,
    )
    _check_secrets_private(path, data)
    if config.templates_dir and not config.templates_dir.is_dir():
        top.fail("templates_dir", f"{config.templates_dir} is not a directory")
    return config
