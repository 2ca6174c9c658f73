"""Settling in-doubt SMS and delivery status against a loopback fault server: find_sent
found / not found / no answer, and fetch_status."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from reminder_cli.errors import Outcome, SendError
from reminder_cli.transports.twilio_sms import TwilioTransport
from tests.conftest import NOW, free_port
from tests.twilio_fakes import (
    ACCOUNT,
    BODY,
    MESSAGES,
    PATIENT,
    SENDER,
    SERVICE,
    SID,
    config,
    transport_for,
    twilio_error,
)

# -- settling in-doubt messages: find_sent ------------------------------------------------------


def listed(sid: str, body: str, created: str, **extra: Any) -> dict[str, Any]:
    return {"sid": sid, "body": body, "to": PATIENT, "from": SENDER, "status": "sent",
            "date_created": created, "messaging_service_sid": None, **extra}  # fmt: skip


def page(messages: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    return {"messages": messages, "next_page_uri": next_page, "page": 0, "page_size": 50}


CLAIMED = NOW  # 2027-01-11 12:00 UTC
BEFORE = "Mon, 11 Jan 2027 11:30:00 +0000"  # half an hour before the claim
AFTER = "Mon, 11 Jan 2027 12:00:03 +0000"


def test_find_sent_returns_the_sid_of_the_message_with_the_same_body(server: HTTPServer) -> None:
    server.expect_request(MESSAGES, method="GET").respond_with_json(page([
        listed("SM" + "1" * 32, BODY, BEFORE),  # same text, an earlier reminder: not ours
        listed("SM" + "2" * 32, "Another reminder", AFTER),
        listed("SM" + "3" * 32, BODY, AFTER),
    ]))  # fmt: skip
    assert transport_for(server).find_sent(PATIENT, BODY, CLAIMED) == "SM" + "3" * 32
    query = server.log[0][0].args.to_dict()
    assert (query["To"], query["From"]) == (PATIENT, SENDER)
    assert not any(key.startswith("DateSent") for key in query)


def test_find_sent_follows_the_next_page(server: HTTPServer) -> None:
    second = f"{MESSAGES}?To=%2B13125550142&PageSize=50&Page=1&PageToken=PA1"

    def answer(request: Request) -> Response:
        if request.args.get("PageToken") == "PA1":
            body = page([listed("SM" + "4" * 32, BODY, AFTER)])
        else:
            body = page([listed("SM" + "2" * 32, "Another reminder", AFTER)], second)
        return Response(json.dumps(body), content_type="application/json")

    server.expect_request(MESSAGES, method="GET").respond_with_handler(answer)
    assert transport_for(server).find_sent(PATIENT, BODY, CLAIMED) == "SM" + "4" * 32
    assert len(server.log) == 2


def test_find_sent_returns_none_when_twilio_has_no_such_message(server: HTTPServer) -> None:
    server.expect_request(MESSAGES, method="GET").respond_with_json(page([
        listed("SM" + "1" * 32, BODY, BEFORE),
        listed("SM" + "2" * 32, BODY + " ", AFTER),
        listed("SM" + "3" * 32, BODY.replace("10:00", "10:30"), AFTER),
    ]))  # fmt: skip
    assert transport_for(server).find_sent(PATIENT, BODY, CLAIMED) is None


def test_find_sent_matches_a_body_whose_punctuation_the_sender_replaced(
    server: HTTPServer,
) -> None:
    ours = "Ana\u2019s appointment \u2013 tomorrow at 10:00\u2026"
    theirs = "Ana's appointment - tomorrow at 10:00..."  # e.g. a service's smart encoding
    server.expect_request(MESSAGES, method="GET").respond_with_json(
        page([listed("SM" + "6" * 32, theirs, AFTER)])
    )
    assert transport_for(server).find_sent(PATIENT, ours, CLAIMED) == "SM" + "6" * 32


def test_find_sent_through_a_messaging_service_matches_only_that_service(
    server: HTTPServer,
) -> None:
    other = "MG" + "f" * 32
    server.expect_request(MESSAGES, method="GET").respond_with_json(page([
        listed("SM" + "1" * 32, BODY, AFTER, messaging_service_sid=other),
        listed("SM" + "2" * 32, BODY, AFTER, messaging_service_sid=SERVICE),
    ]))  # fmt: skip
    transport = transport_for(server, from_number="", messaging_service_sid=SERVICE)
    assert transport.find_sent(PATIENT, BODY, CLAIMED) == "SM" + "2" * 32
    assert "From" not in server.log[0][0].args


def test_find_sent_raises_unknown_when_twilio_does_not_answer(server: HTTPServer) -> None:
    server.expect_request(MESSAGES, method="GET").respond_with_data("busy", status=503)
    with pytest.raises(SendError) as caught:
        transport_for(server).find_sent(PATIENT, BODY, CLAIMED)
    assert (caught.value.outcome, caught.value.code) == (Outcome.UNKNOWN, "http 503")


def test_find_sent_raises_unknown_when_twilio_cannot_be_reached() -> None:
    transport = TwilioTransport(config(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(SendError) as caught:
        transport.find_sent(PATIENT, BODY, CLAIMED)
    assert (caught.value.outcome, caught.value.code) == (Outcome.UNKNOWN, "connection refused")


def test_find_sent_raises_unknown_when_the_list_is_too_long_to_read(server: HTTPServer) -> None:
    endless = f"{MESSAGES}?To=%2B13125550142&PageSize=50&Page=1&PageToken=PAx"
    old = [listed(f"SM{i:032d}", "old", BEFORE) for i in range(50)]
    server.expect_request(MESSAGES, method="GET").respond_with_json(page(old, endless))
    with pytest.raises(SendError) as caught:
        transport_for(server).find_sent(PATIENT, BODY, CLAIMED - timedelta(days=1))
    assert (caught.value.outcome, caught.value.code) == (Outcome.UNKNOWN, "too many")


# -- delivery status: fetch_status --------------------------------------------------------------


@pytest.mark.parametrize(("status", "code", "expected"), [
    ("undelivered", 30003, ("undelivered", "30003")),
    ("failed", 30007, ("failed", "30007")),
    ("delivered", None, ("delivered", None)),
])  # fmt: skip
def test_fetch_status_reports_the_status_and_error_code(
    server: HTTPServer, status: str, code: int | None, expected: tuple[str, str | None]
) -> None:
    server.expect_request(f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json").respond_with_json(
        {"sid": SID, "status": status, "error_code": code}
    )
    assert transport_for(server).fetch_status(SID) == expected


def test_fetch_status_of_an_unknown_message_is_a_permanent_error(server: HTTPServer) -> None:
    server.expect_request(f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json").respond_with_json(
        twilio_error(404, 20404, "The requested resource was not found"), status=404
    )
    with pytest.raises(SendError) as caught:
        transport_for(server).fetch_status(SID)
    assert (caught.value.outcome, caught.value.code) == (Outcome.PERMANENT, "twilio 20404")
    assert caught.value.text == "The requested resource was not found"
