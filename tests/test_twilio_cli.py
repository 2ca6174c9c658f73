"""The Twilio SMS path through the command line: `import`, `send-due`, `sync-status`, `status`
and `show`, in-process with the clock frozen, against a small Twilio of the tests' own
(pytest-httpserver on 127.0.0.1, reached by the real SDK through `[sms] api_base_url`).

The fake Twilio keeps every message it is sent (as Twilio would: a message is in its list
as soon as the request has arrived, whatever happens to the answer) and answers the message
list and a message's status the way Twilio's 2010 API does. Each test says how it answers:
accept, refuse with a Twilio error, 503, or hang past the client's time-out.

Every expected value is worked out here from the inputs, never read from the code under test:
the clinic is in America/Chicago (UTC-6 in January), the one rule sends an SMS a day before,
so an appointment on Tuesday 2027-01-12 at 10:00 CST is due Monday at 16:00Z and stays
useful for 12 hours. The cron run of Monday 16:05Z (10:05 CST) is far from quiet hours.
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from click.testing import Result
from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.admin_support import write_csv
from tests.conftest import CONFIG, free_port, invoke
from tests.twilio_fakes import ACCOUNT, SENDER, TOKEN, running_fault_server, twilio_error

ACCOUNT_PATH = f"/2010-04-01/Accounts/{ACCOUNT}"
MESSAGES_PATH = f"{ACCOUNT_PATH}/Messages.json"
ONE_MESSAGE = re.compile(rf"^{ACCOUNT_PATH}/Messages/(SM[0-9a-fA-F]{{32}})\.json$")
BASIC_AUTH = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()

SMS_ONLY = """\
[[rules]]
name = "day-before"
before = "1d"
channels = ["sms"]
"""
OUTBOX_SMS = '[sms]\ntransport = "outbox"\nfrom_number = "+13125550100"\n'

IMPORTED_AT = datetime(2027, 1, 11, 12, 0, tzinfo=UTC)  # Monday 06:00 CST
T0 = datetime(2027, 1, 11, 16, 5, tzinfo=UTC)  # the cron run after the reminders fell due
DUE = datetime(2027, 1, 11, 16, 0, tzinfo=UTC)  # Tuesday 10:00 CST less one day
RETRY_INTERVAL = timedelta(minutes=5)  # [delivery] cron_interval, by default
SETTLE_AFTER = timedelta(minutes=5)  # "the claim is older than a few minutes" (issue 3)
HANG_LIMIT = 30.0  # a hanging answer is held at most this long (released at teardown)
GSM7_EXTENSION = set("\f^{}\\[~]|€")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def rfc2822(moment: datetime) -> str:
    """A time as Twilio's 2010 API writes it: Mon, 11 Jan 2027 16:05:00 +0000."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def masked(number: str) -> str:
    """A phone number as stderr and logs show it: +1312***0142."""
    return f"{number[:5]}***{number[-4:]}"


def expected_body(name: str, day: str = "Tue, Jan 12") -> str:
    """The shipped sms.txt for an appointment at 10:00 CST, worked out by hand."""
    return (
        f"Hi {name}, your appointment at Maple Street Clinic is {day} at 10:00 AM CST. "
        "To change it, call (312) 555-0100."
    )


def expected_segments(body: str) -> dict[str, object]:
    """Encoding and segment count by the GSM 03.38 rules: 160 septets in one part or 153 per
    part; UCS-2 70 UTF-16 units in one part or 67 per part. Only for the bodies used here:
    plain ASCII without ` or the extension table (GSM-7, one septet each), or text with an
    emoji (UCS-2); none puts an escape or a surrogate pair on a part boundary."""
    if all(ch.isascii() and ch != "`" for ch in body) and not GSM7_EXTENSION & set(body):
        length, single, part, encoding = len(body), 160, 153, "GSM-7"
    else:
        assert any(ord(ch) > 0xFFFF for ch in body), "not a body this helper can judge"
        length, single, part, encoding = len(body.encode("utf-16-le")) // 2, 70, 67, "UCS-2"
    return {"segments": 1 if length <= single else math.ceil(length / part), "encoding": encoding}


# -- the fake Twilio ----------------------------------------------------------------------------


def json_response(data: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


@dataclass
class Kept:
    """A message the fake Twilio has (listed by GET Messages.json)."""

    sid: str
    to: str
    sender: str
    body: str
    created: datetime

    def listed(self) -> dict[str, Any]:
        return {"sid": self.sid, "account_sid": ACCOUNT, "to": self.to, "from": self.sender,
                "body": self.body, "status": "sent", "direction": "outbound-api",
                "date_created": rfc2822(self.created), "messaging_service_sid": None,
                "error_code": None}  # fmt: skip


Answer = Callable[["FakeTwilio", dict[str, str]], Response]


def accept(fake: FakeTwilio, form: dict[str, str]) -> Response:
    kept = fake.keep(form)
    return json_response({"sid": kept.sid, "status": "queued", "to": kept.to}, 201)


def hang(fake: FakeTwilio, form: dict[str, str]) -> Response:
    """Twilio takes the message, then answers only after the client has given up."""
    kept = fake.keep(form)
    fake.release.wait(HANG_LIMIT)
    return json_response({"sid": kept.sid, "status": "queued"}, 201)


def refuse(status: int, code: int, message: str) -> Answer:
    return lambda fake, form: json_response(twilio_error(status, code, message), status)


def unavailable(fake: FakeTwilio, form: dict[str, str] | None = None) -> Response:
    return Response("<html>Service Unavailable</html>", status=503, content_type="text/html")


class FakeTwilio:
    """Twilio's Messages resource for one account, recording every request.

    POST Messages.json: `answers[To]` (else `default`) decides; `accept` and `hang` keep the
    message. GET Messages.json: the kept messages to `To` from `From`, newest first, plus
    `also_listed`, unless `list_answer` says otherwise. GET Messages/SM....json: `status[sid]`
    (else `default_status`)."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.guard = threading.Lock()
        self.release = threading.Event()
        self.posts: list[dict[str, str]] = []
        self.kept: list[Kept] = []
        self.list_queries: list[dict[str, str]] = []
        self.fetched: list[str] = []
        self.authorizations: set[str] = set()
        self.answers: dict[str, Answer] = {}
        self.default: Answer = accept
        self.list_answer: Callable[[], Response] | None = None
        self.also_listed: list[Kept] = []
        self.status: dict[str, tuple[str, int | None]] = {}
        self.default_status: tuple[str, int | None] = ("delivered", None)
        self.active = 0  # requests being handled right now
        self.sids = 0
        server.expect_request(re.compile(rf"^{ACCOUNT_PATH}/.*")).respond_with_handler(self.handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def keep(self, form: dict[str, str]) -> Kept:
        with self.guard:
            self.sids += 1  # never reused, even when a test empties `kept`
            kept = Kept(f"SM{self.sids:032x}", form["To"], form.get("From", ""), form["Body"],
                        datetime.now(UTC))  # fmt: skip
            self.kept.append(kept)
        return kept

    def sid_for(self, to: str) -> str:
        [sid] = [k.sid for k in self.kept if k.to == to]
        return sid

    def posts_to(self, to: str) -> list[dict[str, str]]:
        return [form for form in self.posts if form["To"] == to]

    def handle(self, request: Request) -> Response:
        with self.guard:
            self.active += 1
            self.authorizations.add(request.headers.get("Authorization", ""))
        try:
            return self._answer(request)
        finally:
            with self.guard:
                self.active -= 1

    def _answer(self, request: Request) -> Response:
        if request.method == "POST" and request.path == MESSAGES_PATH:
            form = request.form.to_dict()
            with self.guard:
                self.posts.append(form)
                answer = self.answers.get(form.get("To", ""), self.default)
            return answer(self, form)
        if request.method == "GET" and request.path == MESSAGES_PATH:
            query = request.args.to_dict()
            with self.guard:
                self.list_queries.append(query)
                found = [k for k in self.kept + self.also_listed
                         if k.to == query.get("To") and k.sender == query.get("From")]  # fmt: skip
            if self.list_answer is not None:
                return self.list_answer()
            found.sort(key=lambda k: k.created, reverse=True)
            listed = [k.listed() for k in found]
            return json_response({"messages": listed, "next_page_uri": None, "page": 0,
                                  "page_size": 50, "uri": request.full_path})  # fmt: skip
        match = ONE_MESSAGE.match(request.path)
        if request.method == "GET" and match:
            sid = match[1]
            with self.guard:
                self.fetched.append(sid)
            status, code = self.status.get(sid, self.default_status)
            return json_response({"sid": sid, "status": status, "error_code": code})
        return json_response(twilio_error(404, 20404, "The requested resource was not found"), 404)


def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy for 127.0.0.1, and no Twilio credentials from the developer's environment."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID"):
        monkeypatch.delenv(name, raising=False)


@contextmanager
def fake_twilio_server() -> Iterator[HTTPServer]:
    """A threaded loopback server, its request log kept out of the CLI's captured stderr."""
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.CRITICAL)
    try:
        with running_fault_server() as server:
            yield server
    finally:
        werkzeug_log.setLevel(level)


@contextmanager
def fake_twilio(server: HTTPServer) -> Iterator[FakeTwilio]:
    """A fresh FakeTwilio on `server`; afterwards, held answers are released and no request
    may have gone anywhere but the account's Messages resource."""
    server.clear()
    fake = FakeTwilio(server)
    try:
        yield fake
    finally:
        fake.release.set()
    server.check_assertions()
    server.clear()


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[HTTPServer]:
    with fake_twilio_server() as server:
        yield server


@pytest.fixture
def twilio(twilio_server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    loopback_only(monkeypatch)
    with fake_twilio(twilio_server) as fake:
        yield fake


# -- the practice -------------------------------------------------------------------------------


def twilio_config(
    directory: Path,
    base_url: str,
    *,
    workers: int = 4,
    token: str | None = TOKEN,
    timeout: float = 1,
    rules: str = SMS_ONLY,
) -> Path:
    """conftest's reminder.toml with `[sms]` sending through Twilio at `base_url`; without
    `token`, the auth token comes from the environment (TWILIO_AUTH_TOKEN)."""
    text = CONFIG.format(rules=rules, email_transport="outbox", port=25, timeout=5,
                         workers=workers, extra="")  # fmt: skip
    assert OUTBOX_SMS in text
    sms = (
        '[sms]\ntransport = "twilio"\n'
        f'account_sid = "{ACCOUNT}"\n'
        + (f'auth_token = "{token}"\n' if token else "")
        + f'from_number = "{SENDER}"\napi_base_url = "{base_url}"\ntimeout = {timeout:g}\n'
    )
    path = directory / "reminder.toml"
    path.write_text(text.replace(OUTBOX_SMS, sms), encoding="utf-8")
    path.chmod(0o600)  # it may hold the auth token: owner only, as the program insists
    return path


@dataclass(frozen=True)
class Patient:
    appointment: str
    name: str
    phone: str  # E.164, as Twilio must receive it
    starts_at: str = "2027-01-12T10:00"  # Tuesday, America/Chicago

    def row(self) -> dict[str, str]:
        number = phonenumbers.parse(self.phone)
        assert phonenumbers.is_valid_number(number), self.phone
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return {"appointment_id": self.appointment, "name": self.name, "phone": national,
                "starts_at": self.starts_at}  # fmt: skip


AVERY = Patient("TW-01", "Avery Lindqvist", "+13125550142")
MAX = Patient("TW-02", "Maximiliana Alexandrina Wolfeschlegelsteinhausen-Bergdorff", "+13122010002")
ZOE = Patient("TW-03", "Zoë 🌻 Park", "+13122010003")
OLIVE = Patient("TW-04", "Olive Stopford", "+13122010004")
OLIVE_AGAIN = Patient("TW-05", "Olive Stopford", "+13122010004", "2027-01-13T10:00")  # Wed
PEOPLE = [Patient(f"TW-1{i}", f"Patient {i}", f"+1312202{i:04d}") for i in range(5)]


def at(instant: datetime, config: Path, *args: str, env: dict[str, str | None] | None = None
       ) -> Result:  # fmt: skip
    with freeze_time(instant):
        return invoke(config, *args, env=env)  # type: ignore[arg-type]


def practice(
    tmp_path: Path, twilio: FakeTwilio, patients: list[Patient], base_url: str = "", **config: Any
) -> Path:
    """A clinic sending SMS through the fake Twilio (or `base_url`), its appointments imported
    on Monday."""
    path = twilio_config(tmp_path, base_url or twilio.base_url, **config)
    csv_path = write_csv(tmp_path / "appointments.csv", [p.row() for p in patients])
    env: dict[str, str | None] | None = None
    if config.get("token", TOKEN) is None:  # the token comes from the environment
        env = {"TWILIO_AUTH_TOKEN": TOKEN}
    result = at(IMPORTED_AT, path, "import", str(csv_path), env=env)
    assert result.exit_code == 0, result.stderr
    return path


def rows(config: Path, sql: str, *params: object) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(config.parent / "reminders.db")) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, params)]


def reminder_of(config: Path, patient: Patient) -> dict[str, Any]:
    [row] = rows(config, "SELECT * FROM reminders WHERE appointment_id = ?", patient.appointment)
    return row


def attempts_of(config: Path, reminder_id: int) -> list[dict[str, Any]]:
    return rows(config, "SELECT * FROM dispatches WHERE reminder_id = ? ORDER BY id", reminder_id)


def status_json(instant: datetime, config: Path) -> dict[str, Any]:
    result = at(instant, config, "status", "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def form_for(patient: Patient, body: str | None = None) -> dict[str, str]:
    return {"To": patient.phone, "From": SENDER, "Body": body or expected_body(patient.name)}


# -- 1. sending ---------------------------------------------------------------------------------


def test_send_due_hands_each_sms_to_twilio_and_journals_its_sid_and_segments(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    patients = [AVERY, MAX, ZOE]
    config = practice(tmp_path, twilio, patients)

    result = at(T0, config, "send-due")

    assert result.exit_code == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert sorted(twilio.posts, key=lambda f: f["To"]) == sorted(
        (form_for(p) for p in patients), key=lambda f: f["To"]
    )
    assert twilio.authorizations == {f"Basic {BASIC_AUTH}"}
    segments = {p.appointment: expected_segments(expected_body(p.name)) for p in patients}
    assert [segments[p.appointment] for p in patients] == [
        {"segments": 1, "encoding": "GSM-7"},  # 126 characters
        {"segments": 2, "encoding": "GSM-7"},  # 169 characters: 153 + 16
        {"segments": 2, "encoding": "UCS-2"},  # an emoji and an ë: 122 UTF-16 units
    ]
    for patient in patients:
        sid = twilio.sid_for(patient.phone)
        reminder = reminder_of(config, patient)
        assert (reminder["state"], reminder["provider_id"], reminder["recipient"]) == (
            "sent", sid, patient.phone,
        )  # fmt: skip
        assert (reminder["due_at"], reminder["attempts"]) == (iso(DUE), 1)
        [attempt] = attempts_of(config, reminder["id"])
        assert (attempt["outcome"], attempt["provider_id"], attempt["error_code"]) == (
            "sent", sid, None,
        )  # fmt: skip
        assert json.loads(attempt["detail"]) == segments[patient.appointment]
        shown = at(T0, config, "show", str(reminder["id"]))
        assert shown.exit_code == 0, shown.stderr
        assert f"Reminder {reminder['id']}: sms to {patient.phone}" in shown.stdout
        assert "state sent" in shown.stdout and sid in shown.stdout, shown.stdout
    status = status_json(T0, config)
    assert status["counts"]["sent"] == 3 and status["in_doubt"] == []
    assert status["last_run"]["outcome"] == "ok" and status["last_run"]["sent"] == 3
    # the end of send-due asked Twilio for each message's status, within its budget
    assert sorted(twilio.fetched) == sorted(k.sid for k in twilio.kept)
    assert status["sms_delivery"] == {"delivered": 3}


# -- 2. each error class ------------------------------------------------------------------------

REFUSALS = [
    # HTTP status, Twilio code (None: an HTML page), Twilio's message, final state
    (400, 21211, "The 'To' number +13122020000 is not a valid phone number.", "failed"),
    (400, 21614, "'To' number +13122020000 is not a valid mobile number", "failed"),
    (400, 21408, "Permission to send an SMS has not been enabled for the region indicated by "
                 "the 'To' number: +13122020000.", "failed"),
    (429, 20429, "Too Many Requests", "pending"),
    (503, None, "HTTP 503", "pending"),
]  # fmt: skip


@pytest.mark.parametrize(("http", "code", "said", "state"), REFUSALS,
                         ids=["21211", "21614", "21408", "20429", "503"])  # fmt: skip
def test_each_twilio_refusal_ends_in_its_state_with_twilios_own_words(
    tmp_path: Path, twilio: FakeTwilio, http: int, code: int | None, said: str, state: str
) -> None:
    patient = PEOPLE[0]
    config = practice(tmp_path, twilio, [patient])
    twilio.answers[patient.phone] = refuse(http, code, said) if code else unavailable
    journal_code = f"twilio {code}" if code else f"http {http}"
    outcome = "permanent" if state == "failed" else "transient"

    result = at(T0, config, "send-due")

    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    assert twilio.posts == [form_for(patient)]
    reminder = reminder_of(config, patient)
    rid = reminder["id"]
    [attempt] = attempts_of(config, rid)
    assert (attempt["outcome"], attempt["error_code"], attempt["error_message"]) == (
        outcome, journal_code, said,
    )  # fmt: skip
    assert attempt["provider_id"] is None and attempt["finished_at"] == iso(T0)
    assert reminder["state"] == state
    where = f"reminder {rid} (sms to {masked(patient.phone)}): "
    status = status_json(T0, config)
    if state == "failed":
        assert reminder["reason"] == f"{journal_code}: {said}"
        assert result.stderr == f"{where}failed: {journal_code}: {said}\n"
        [failure] = status["recent_failures"]
        assert (failure["id"], failure["reason"]) == (rid, f"{journal_code}: {said}")
        assert status["last_run"]["failed"] == 1
        return
    # not accepted: back to pending, to be tried again after one cron interval (plus jitter)
    retry_at = datetime.fromisoformat(reminder["not_before"])
    assert T0 + RETRY_INTERVAL <= retry_at <= T0 + RETRY_INTERVAL * 1.25
    assert reminder["reason"] == (
        f"attempt 1 failed ({journal_code}: {said}); retry after {retry_at:%H:%M} UTC"
    )
    assert result.stderr == f"{where}not sent this time, will retry: {journal_code}: {said}\n"
    assert status["counts"]["pending"] == 1 and status["next_due_at"] == iso(retry_at)
    assert status["last_run"]["retrying"] == 1

    early = at(retry_at - timedelta(seconds=1), config, "send-due")
    assert (early.exit_code, early.stderr) == (0, "")
    assert len(twilio.posts) == 1  # not before its retry time
    twilio.answers.clear()
    again = at(retry_at + timedelta(seconds=1), config, "send-due")
    assert (again.exit_code, again.stderr) == (0, "")
    assert twilio.posts == [form_for(patient)] * 2
    reminder = reminder_of(config, patient)
    assert (reminder["state"], reminder["attempts"]) == ("sent", 2)
    assert reminder["provider_id"] == twilio.sid_for(patient.phone)


def test_an_sms_to_a_twilio_nobody_listens_at_waits_for_a_retry(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    patient = PEOPLE[0]
    port = free_port()
    config = practice(tmp_path, twilio, [patient], base_url=f"http://127.0.0.1:{port}")

    result = at(T0, config, "send-due")

    assert result.exit_code == 1, result.stderr
    said = f"127.0.0.1:{port} refused the connection"
    reminder = reminder_of(config, patient)
    [attempt] = attempts_of(config, reminder["id"])
    assert (attempt["outcome"], attempt["error_code"], attempt["error_message"]) == (
        "transient", "connection refused", said,
    )  # fmt: skip
    assert reminder["state"] == "pending"
    assert datetime.fromisoformat(reminder["not_before"]) >= T0 + RETRY_INTERVAL
    assert result.stderr.endswith(f"will retry: connection refused: {said}\n")


def test_an_sms_longer_than_max_segments_fails_before_twilio_is_asked(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    patient = Patient("TW-06", "Zoë 🌻 Park-Montgomery-Featherstonehaugh", "+13122010006")
    body = expected_body(patient.name)
    units = len(body.encode("utf-16-le")) // 2
    assert expected_segments(body) == {"segments": 3, "encoding": "UCS-2"}  # max_segments is 2
    config = practice(tmp_path, twilio, [patient, AVERY])

    result = at(T0, config, "send-due")

    assert result.exit_code == 1, result.stderr
    assert [f["To"] for f in twilio.posts] == [AVERY.phone]
    said = (
        f"template sms.txt (rule day-before) renders {units} characters in UCS-2, 3 SMS "
        "segments; max_segments is 2: shorten the template"
    )
    reminder = reminder_of(config, patient)
    assert (reminder["state"], reminder["reason"]) == ("failed", f"template: {said}")
    [attempt] = attempts_of(config, reminder["id"])
    assert (attempt["outcome"], attempt["error_code"], attempt["error_message"]) == (
        "permanent", "template", said,
    )  # fmt: skip
    assert result.stderr == (
        f"reminder {reminder['id']} (sms to {masked(patient.phone)}): failed: template: {said}\n"
    )


STOP = "Attempt to send to unsubscribed recipient"


@pytest.mark.parametrize("same_run", [False, True], ids=["next-day", "same-run"])
def test_an_unsubscribed_number_fails_and_later_sms_to_it_are_suppressed(
    tmp_path: Path, twilio: FakeTwilio, same_run: bool
) -> None:
    """21610: failed, the number remembered as opted out, and the next SMS to it (another
    appointment) suppressed without asking Twilio: the next day, or later in the same run
    (one worker, so the refusal is recorded before the second is claimed)."""
    second = replace_start(OLIVE_AGAIN, "2027-01-12T10:02") if same_run else OLIVE_AGAIN
    config = practice(tmp_path, twilio, [OLIVE, second, AVERY], workers=1)
    twilio.answers[OLIVE.phone] = refuse(400, 21610, STOP)
    first_id, second_id = reminder_of(config, OLIVE)["id"], reminder_of(config, second)["id"]
    later = T0 + timedelta(hours=1) if same_run else T0 + timedelta(days=1)

    result = at(T0, config, "send-due")

    assert result.exit_code == 1, result.stderr
    where = f"(sms to {masked(OLIVE.phone)})"
    failed_line = f"reminder {first_id} {where}: failed: twilio 21610: {STOP}"
    assert result.stderr.splitlines()[0] == failed_line
    first = reminder_of(config, OLIVE)
    assert (first["state"], first["reason"]) == ("failed", f"twilio 21610: {STOP}")
    [attempt] = attempts_of(config, first_id)
    assert (attempt["outcome"], attempt["error_code"], attempt["error_message"]) == (
        "permanent", "twilio 21610", STOP,
    )  # fmt: skip
    if not same_run:
        assert result.stderr.splitlines() == [failed_line]
        assert reminder_of(config, second)["state"] == "pending"
        result = at(later, config, "send-due")
        assert result.exit_code == 1, result.stderr

    suppressed = reminder_of(config, second)
    reason = f"opted out: twilio 21610: {STOP}"
    assert (suppressed["state"], suppressed["reason"]) == ("suppressed", reason)
    assert attempts_of(config, second_id) == []
    assert f"reminder {second_id} {where}: suppressed: {reason}" in result.stderr.splitlines()
    assert [f["To"] for f in twilio.posts] == [OLIVE.phone, AVERY.phone]  # never asked again
    assert reminder_of(config, AVERY)["state"] == "sent"
    status = status_json(later, config)
    assert status["data_quality"]["opted_out"] == [
        {"recipient": OLIVE.phone, "since": iso(T0), "reason": f"twilio 21610: {STOP}"}
    ]
    assert [(s["id"], s["reason"]) for s in status["suppressed"]] == [(second_id, reason)]


def replace_start(patient: Patient, starts_at: str) -> Patient:
    return Patient(patient.appointment, patient.name, patient.phone, starts_at)


AUTH_FAILED = "Authenticate"
AUTH_ADVICE = "authentication failed: check [sms] account_sid and the TWILIO_AUTH_TOKEN variable"


@pytest.mark.parametrize("workers", [1, 3])
def test_an_authentication_failure_stops_the_run_at_once(
    tmp_path: Path, twilio: FakeTwilio, workers: int
) -> None:
    """20003: what was in flight fails, nothing more is claimed, the rest stays pending."""
    config = practice(tmp_path, twilio, PEOPLE, workers=workers)
    twilio.default = refuse(401, 20003, AUTH_FAILED)

    result = at(T0, config, "send-due")

    assert result.exit_code == 1, result.stderr
    assert len(twilio.posts) == workers  # the first claims went out together; no more after
    said = f"{AUTH_FAILED} ({AUTH_ADVICE})"
    states = {p.phone: reminder_of(config, p)["state"] for p in PEOPLE}
    asked = {f["To"] for f in twilio.posts}
    assert states == {p.phone: "failed" if p.phone in asked else "pending" for p in PEOPLE}
    for patient in PEOPLE:
        reminder = reminder_of(config, patient)
        attempts = attempts_of(config, reminder["id"])
        if patient.phone not in asked:
            assert (attempts, reminder["attempts"]) == ([], 0)
            continue
        [attempt] = attempts
        assert (attempt["outcome"], attempt["error_code"], attempt["error_message"]) == (
            "permanent", "twilio 20003", said,
        )  # fmt: skip
        assert reminder["reason"] == f"twilio 20003: {said}"
    assert len(result.stderr.splitlines()) == workers
    assert all(f"failed: twilio 20003: {said}" in line for line in result.stderr.splitlines())
    [run] = rows(config, "SELECT * FROM runs WHERE kind = 'send-due'")
    assert (run["outcome"], run["reason"]) == ("stopped_early", f"stopped: twilio 20003: {said}")
    assert (run["failed"], run["sent"]) == (workers, 0)
    assert status_json(T0, config)["last_run"]["outcome"] == "stopped_early"


def test_a_twilio_that_hangs_past_the_time_out_leaves_the_sms_in_doubt(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    slow, fine = PEOPLE[0], PEOPLE[1]
    config = practice(tmp_path, twilio, [slow, fine], workers=2)
    twilio.answers[slow.phone] = hang
    where = twilio.base_url.removeprefix("http://")
    said = f"no answer from {where} within 1 s; Twilio may have it"

    result = at(T0, config, "send-due")

    assert result.exit_code == 1, result.stderr
    assert sorted(f["To"] for f in twilio.posts) == [slow.phone, fine.phone]
    reminder = reminder_of(config, slow)
    reason = f"no answer from the provider: timeout: {said}"
    assert (reminder["state"], reminder["reason"], reminder["provider_id"]) == (
        "unknown", reason, None,
    )  # fmt: skip
    [attempt] = attempts_of(config, reminder["id"])
    assert (attempt["outcome"], attempt["error_code"], attempt["error_message"]) == (
        "unknown", "timeout", said,
    )  # fmt: skip
    assert result.stderr == (
        f"reminder {reminder['id']} (sms to {masked(slow.phone)}): in doubt ({reason}); "
        "see `reminder status`\n"
    )
    assert reminder_of(config, fine)["state"] == "sent"
    status = status_json(T0, config)
    assert [(r["id"], r["state"], r["reason"]) for r in status["in_doubt"]] == [
        (reminder["id"], "unknown", reason)
    ]
    assert status["last_run"]["unknown"] == 1


def test_the_auth_token_never_shows_in_output_logs_status_or_journal(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    """Every path that writes text: a sent SMS, a refusal, a hang, an authentication failure
    (with the token from the environment), then settling, sync-status, status and show."""
    sent, refused, hung, denied = PEOPLE[:4]
    config = practice(tmp_path, twilio, [sent, refused, hung, denied], workers=1, token=None)
    env: dict[str, str | None] = {"TWILIO_AUTH_TOKEN": TOKEN}
    twilio.answers[refused.phone] = refuse(400, 21211, "Invalid 'To' Phone Number")
    twilio.answers[hung.phone] = hang
    twilio.answers[denied.phone] = refuse(401, 20003, AUTH_FAILED)
    log_file = tmp_path / "logs" / "reminder.jsonl"
    outputs: list[str] = []

    def run(instant: datetime, *args: str) -> Result:
        result = at(instant, config, "--log-file", str(log_file), "-v", *args, env=env)
        outputs.extend([result.stdout, result.stderr])
        return result

    first = at(T0, config, "--log-file", str(log_file), "-v", "send-due", env=env)
    outputs.extend([first.stdout, first.stderr])
    assert first.exit_code == 1, first.stderr
    twilio.list_answer = lambda: json_response(twilio_error(401, 20003, AUTH_FAILED), 401)
    twilio.default_status = ("undelivered", 30003)
    assert run(T0 + SETTLE_AFTER * 2, "send-due").exit_code == 0  # settling meets 20003
    assert run(T0 + SETTLE_AFTER * 3, "sync-status").exit_code == 0
    assert run(T0 + SETTLE_AFTER * 3, "status", "--json").exit_code == 0
    assert run(T0 + SETTLE_AFTER * 3, "status").exit_code == 0
    ids = [str(reminder_of(config, p)["id"]) for p in (sent, refused, hung, denied)]
    assert run(T0 + SETTLE_AFTER * 3, "show", *ids).exit_code == 0

    # the run did what the scenario says, so every path above was taken
    assert [reminder_of(config, p)["state"] for p in (sent, refused, hung, denied)] == [
        "sent", "failed", "unknown", "failed",
    ]  # fmt: skip
    assert twilio.authorizations == {f"Basic {BASIC_AUTH}"}  # the token from the environment
    assert twilio.list_queries and twilio.fetched
    logged = log_file.read_text(encoding="utf-8")
    assert logged.count("\n") >= 4
    journal = b"".join(p.read_bytes() for p in tmp_path.glob("reminders.db*"))
    for secret in (TOKEN, BASIC_AUTH):
        for text in outputs:
            assert secret not in text
        assert secret not in logged
        assert secret.encode() not in journal
    assert "\x1b" not in "".join(outputs)  # nor the SDK's coloured exception text


# -- 3. settling in-doubt SMS with Twilio's message list -----------------------------------------


def left_in_doubt(tmp_path: Path, twilio: FakeTwilio) -> tuple[Path, Patient, int]:
    """Patient 0's SMS in doubt: Twilio took it at T0 and answered after the time-out."""
    patient = PEOPLE[0]
    config = practice(tmp_path, twilio, [patient])
    twilio.answers[patient.phone] = hang
    result = at(T0, config, "send-due")
    assert result.exit_code == 1, result.stderr
    reminder = reminder_of(config, patient)
    assert reminder["state"] == "unknown"
    twilio.answers.clear()
    return config, patient, int(reminder["id"])


def test_send_due_settles_an_sms_twilio_has_as_sent_with_its_sid(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    config, patient, rid = left_in_doubt(tmp_path, twilio)
    [kept] = twilio.kept
    body = expected_body(patient.name)
    twilio.also_listed = [  # the same text a day earlier, and another text since: not ours
        Kept("SM" + "e" * 32, patient.phone, SENDER, body, T0 - timedelta(days=1)),
        Kept("SM" + "d" * 32, patient.phone, SENDER, "Your results are ready.", T0),
    ]

    result = at(T0 + timedelta(minutes=5), config, "send-due")

    assert result.exit_code == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert len(twilio.posts) == 1  # not sent again
    [query] = twilio.list_queries
    assert (query["To"], query["From"]) == (patient.phone, SENDER)
    reminder = reminder_of(config, patient)
    note = f"settled with Twilio: it accepted this message as {kept.sid}"
    assert (reminder["state"], reminder["provider_id"], reminder["reason"]) == (
        "sent", kept.sid, note,
    )  # fmt: skip
    [attempt] = attempts_of(config, rid)
    assert (attempt["outcome"], attempt["provider_id"], attempt["error_message"]) == (
        "sent", kept.sid, note,
    )  # fmt: skip
    assert attempt["error_code"] is None
    shown = at(T0 + timedelta(minutes=5), config, "show", str(rid))
    assert f"state sent ({note})" in shown.stdout
    status = status_json(T0 + timedelta(minutes=5), config)
    assert status["in_doubt"] == [] and status["counts"]["sent"] == 1
    assert twilio.fetched == [kept.sid]  # and its delivery status was asked for


def test_send_due_sends_again_an_sms_twilio_never_accepted_once_the_claim_is_old_enough(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    config, patient, rid = left_in_doubt(tmp_path, twilio)
    twilio.kept.clear()  # Twilio never accepted it
    # only the same text from two days before (say, an earlier rule's reminder): not this one
    earlier = Kept("SM" + "e" * 32, patient.phone, SENDER, expected_body(patient.name),
                   T0 - timedelta(days=2))  # fmt: skip
    twilio.also_listed = [earlier]
    note = (
        "settled with Twilio: no such message since the claim; it was never accepted, "
        "so it goes out again"
    )

    too_soon = at(T0 + SETTLE_AFTER - timedelta(seconds=1), config, "send-due")

    assert (too_soon.exit_code, too_soon.stderr) == (0, "")
    assert len(twilio.list_queries) == 1 and len(twilio.posts) == 1
    assert reminder_of(config, patient)["state"] == "unknown"  # too recent to conclude

    result = at(T0 + SETTLE_AFTER, config, "send-due")

    assert result.exit_code == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert len(twilio.list_queries) == 2
    assert twilio.posts == [form_for(patient)] * 2  # exactly one more, in that same run
    reminder = reminder_of(config, patient)
    sid = twilio.sid_for(patient.phone)
    assert (reminder["state"], reminder["provider_id"], reminder["attempts"]) == ("sent", sid, 2)
    first, second = attempts_of(config, rid)
    assert (first["outcome"], first["error_code"], first["error_message"]) == (
        "transient", "settled", note,
    )  # fmt: skip
    assert (second["outcome"], second["provider_id"], second["claimed_at"]) == (
        "sent", sid, iso(T0 + SETTLE_AFTER),
    )  # fmt: skip
    shown = at(T0 + SETTLE_AFTER, config, "show", str(rid))
    assert "settled with Twilio: no such message since the claim" in shown.stdout  # a table
    assert sid in shown.stdout and "state sent" in shown.stdout


def test_an_sms_in_doubt_is_not_sent_twice_when_a_reimport_changed_its_text_since(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    """Twilio has the SMS (it hung past the time-out at T0); a minute later the practice's
    export is imported again with a room for the appointment, same time, same patient, so the
    reminder is kept as it is. Twilio's list still holds the text that was sent: the next run
    must settle it as sent, not decide it was never accepted and send a second SMS."""
    config, patient, rid = left_in_doubt(tmp_path, twilio)
    [kept] = twilio.kept
    assert kept.body == expected_body(patient.name)
    csv_path = tmp_path / "appointments.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, [*patient.row(), "location"])
        writer.writeheader()
        writer.writerow(patient.row() | {"location": "Room 2"})
    reimport = at(T0 + timedelta(minutes=1), config, "import", str(csv_path))
    assert reimport.exit_code == 0, reimport.stderr
    assert reminder_of(config, patient)["state"] == "unknown"  # the same reminder, in doubt

    result = at(T0 + timedelta(minutes=10), config, "send-due")

    assert result.exit_code == 0, result.stderr
    assert len(twilio.posts) == 1, [f["Body"] for f in twilio.posts]  # never twice
    reminder = reminder_of(config, patient)
    assert (reminder["state"], reminder["provider_id"]) == ("sent", kept.sid)
    assert [a["provider_id"] for a in attempts_of(config, rid)] == [kept.sid]


@pytest.mark.parametrize("how", ["503", "hang"])
def test_an_sms_stays_in_doubt_when_twilio_does_not_answer_the_question(
    tmp_path: Path, twilio: FakeTwilio, how: str
) -> None:
    config, patient, rid = left_in_doubt(tmp_path, twilio)
    before = reminder_of(config, patient)
    twilio.list_answer = (lambda: unavailable(twilio)) if how == "503" else hanging_list(twilio)
    later = T0 + timedelta(minutes=30)

    result = at(later, config, "send-due")

    assert result.exit_code in (0, 1), result.stderr
    assert len(twilio.list_queries) == 1
    assert len(twilio.posts) == 1  # never sent blindly
    reminder = reminder_of(config, patient)
    assert (reminder["state"], reminder["provider_id"]) == ("unknown", None)
    assert reminder["reason"] != before["reason"]
    assert reminder["reason"].startswith("still in doubt (")
    assert "could not ask Twilio" in reminder["reason"]
    assert ("http 503" if how == "503" else "timeout") in reminder["reason"]
    [attempt] = attempts_of(config, rid)
    assert (attempt["outcome"], attempt["error_code"]) == ("unknown", "timeout")
    status = status_json(later, config)
    assert [(r["id"], r["reason"]) for r in status["in_doubt"]] == [(rid, reminder["reason"])]


def hanging_list(fake: FakeTwilio) -> Callable[[], Response]:
    def answer() -> Response:
        fake.release.wait(HANG_LIMIT)
        return unavailable(fake)

    return answer


# -- 4. delivery status -------------------------------------------------------------------------


def test_sync_status_stores_each_final_status_and_status_reports_undelivered_numbers(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    delivered, undelivered, late = PEOPLE[:3]
    config = practice(tmp_path, twilio, [delivered, undelivered, late])
    twilio.default_status = ("queued", None)
    result = at(T0, config, "send-due")
    assert (result.exit_code, result.stderr) == (0, "")
    sid = {p.phone: twilio.sid_for(p.phone) for p in (delivered, undelivered, late)}
    assert sorted(twilio.fetched) == sorted(sid.values())  # asked once, at the end of the run
    assert status_json(T0, config)["sms_delivery"] == {"accepted": 3}  # queued: no final status yet
    twilio.fetched.clear()
    twilio.status = {sid[delivered.phone]: ("delivered", None),
                     sid[undelivered.phone]: ("undelivered", 30003),
                     sid[late.phone]: ("sent", None)}  # fmt: skip
    hour = T0 + timedelta(hours=1)

    result = at(hour, config, "sync-status")

    assert result.exit_code == 0, result.stderr
    assert (result.stdout, result.stderr) == ("1 delivered, 1 sent, 1 undelivered\n", "")
    assert sorted(twilio.fetched) == sorted(sid.values())
    stored = {
        r["recipient"]: (r["delivery_status"], r["delivery_error"], r["status_checked_at"])
        for r in rows(config, "SELECT * FROM dispatches")
    }
    assert stored == {
        delivered.phone: ("delivered", None, iso(hour)),
        undelivered.phone: ("undelivered", "30003", iso(hour)),
        late.phone: ("sent", None, iso(hour)),
    }
    status = status_json(hour, config)
    assert status["sms_delivery"] == {"delivered": 1, "undelivered": 1, "accepted": 1}
    undelivered_id = reminder_of(config, undelivered)["id"]
    assert status["data_quality"]["undelivered"] == [
        {"recipient": undelivered.phone, "status": "undelivered", "error_code": "30003",
         "reminder_id": undelivered_id, "claimed_at": iso(T0)}
    ]  # fmt: skip
    plain = at(hour, config, "status")
    assert undelivered.phone in plain.stdout and "30003" in plain.stdout

    # only the message without a final status is asked about again
    twilio.fetched.clear()
    twilio.status[sid[late.phone]] = ("failed", 30007)
    result = at(hour + timedelta(hours=1), config, "sync-status")
    assert (result.exit_code, result.stdout) == (0, "1 failed\n")
    assert twilio.fetched == [sid[late.phone]]
    status = status_json(hour + timedelta(hours=1), config)
    assert status["sms_delivery"] == {"delivered": 1, "undelivered": 1, "failed": 1}
    assert sorted((u["recipient"], u["status"], u["error_code"])
                  for u in status["data_quality"]["undelivered"]) == sorted([
        (undelivered.phone, "undelivered", "30003"), (late.phone, "failed", "30007"),
    ])  # fmt: skip

    twilio.fetched.clear()
    result = at(hour + timedelta(hours=2), config, "sync-status")
    assert (result.exit_code, result.stdout) == (0, "No SMS waiting for a final status.\n")
    assert twilio.fetched == []


# -- configuration ------------------------------------------------------------------------------


def test_send_due_without_an_auth_token_exits_2_naming_it_and_claims_nothing(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    config = practice(tmp_path, twilio, PEOPLE[:2], token=None)  # imported with the variable

    result = at(T0, config, "send-due", env={"TWILIO_AUTH_TOKEN": None})

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"reminder: {config}: sms.auth_token: missing: set the TWILIO_AUTH_TOKEN variable "
        "(or auth_token here)\n"
    )
    assert [(r["state"], r["attempts"]) for r in rows(config, "SELECT * FROM reminders")] == [
        ("pending", 0), ("pending", 0),
    ]  # fmt: skip
    assert rows(config, "SELECT * FROM dispatches") == []
    assert rows(config, "SELECT * FROM runs WHERE kind = 'send-due'") == []
    assert twilio.posts == []

    result = at(T0, config, "send-due", env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert (result.exit_code, result.stderr) == (0, "")
    assert len(twilio.posts) == 2


@pytest.mark.parametrize("command", [["status", "--check"], ["show", "1"], ["import"]],
                         ids=["status-check", "show", "import"])  # fmt: skip
def test_commands_that_never_call_twilio_work_without_the_auth_token(
    tmp_path: Path, twilio: FakeTwilio, command: list[str]
) -> None:
    """README: the secrets live in a file that only the send-due cron line sources; the
    health-check line of crontab.example runs `status --check` without it. A healthy journal
    must read "REMINDERS OK", not fail on a setting that only sending needs."""
    config = practice(tmp_path, twilio, PEOPLE[:2], token=None)
    sent = at(T0, config, "send-due", env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert (sent.exit_code, sent.stderr) == (0, "")
    if command == ["import"]:
        command = ["import", str(tmp_path / "appointments.csv")]

    result = at(T0, config, *command, env={"TWILIO_AUTH_TOKEN": None})

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stderr == ""
    if command[0] == "status":
        assert result.stdout.startswith("REMINDERS OK: 2 sent, 0 pending, 0 failed, 0 in doubt")
