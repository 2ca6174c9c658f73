"""The Twilio transport's send against a loopback fault server of our own, reached through
`api_base_url` by the real SDK: each error class ends in the right SendError (outcome, journal
code, Twilio's own text, run-stop and opt-out flags)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from reminder_cli.errors import Outcome
from reminder_cli.transports.twilio_sms import TwilioTransport
from tests.conftest import free_port
from tests.twilio_fakes import (
    ACCOUNT,
    BODY,
    MESSAGES,
    PATIENT,
    SENDER,
    SERVICE,
    SID,
    TOKEN,
    config,
    message,
    send_error,
    transport_for,
    twilio_error,
)


def test_send_posts_to_from_body_and_callback_with_basic_auth(server: HTTPServer) -> None:
    callback = "https://clinic.example/twilio/status"
    server.expect_request(MESSAGES, method="POST").respond_with_json(
        {"sid": SID, "status": "queued"}, status=201
    )
    transport = transport_for(server, status_callback=callback)
    assert transport.send(message()) == SID
    request = server.log[0][0]
    assert request.form.to_dict() == {
        "To": PATIENT,
        "From": SENDER,
        "Body": BODY,
        "StatusCallback": callback,
    }
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_send_through_a_messaging_service_names_the_service(server: HTTPServer) -> None:
    server.expect_request(MESSAGES, method="POST").respond_with_json({"sid": SID}, status=201)
    transport = transport_for(server, from_number="", messaging_service_sid=SERVICE)
    assert transport.send(message()) == SID
    form = server.log[0][0].form.to_dict()
    assert form == {"To": PATIENT, "Body": BODY, "MessagingServiceSid": SERVICE}


ERROR_CASES = [
    # status, Twilio code, outcome, journal code, stop_run, opted_out
    (400, 21211, Outcome.PERMANENT, "twilio 21211", False, False),
    (400, 21614, Outcome.PERMANENT, "twilio 21614", False, False),
    (400, 21408, Outcome.PERMANENT, "twilio 21408", False, False),
    (400, 21610, Outcome.PERMANENT, "twilio 21610", False, True),
    (400, 21617, Outcome.PERMANENT, "twilio 21617", False, False),  # any other 4xx
    (404, 20404, Outcome.PERMANENT, "twilio 20404", False, False),
    (429, 20429, Outcome.TRANSIENT, "twilio 20429", False, False),
    (500, 20500, Outcome.TRANSIENT, "twilio 20500", False, False),  # by its 5xx status
    (401, 20003, Outcome.PERMANENT, "twilio 20003", True, False),
]


@pytest.mark.parametrize(("status", "code", "outcome", "journal", "stop", "opted"), ERROR_CASES)
def test_each_twilio_error_code_ends_in_its_outcome_with_twilios_own_message(
    server: HTTPServer,
    status: int,
    code: int,
    outcome: Outcome,
    journal: str,
    stop: bool,
    opted: bool,
) -> None:
    said = f"Twilio says no ({code}) for +13125550142."
    server.expect_request(MESSAGES, method="POST").respond_with_json(
        twilio_error(status, code, said), status=status
    )
    error = send_error(transport_for(server))
    assert (error.outcome, error.code, error.stop_run, error.opted_out) == (
        outcome,
        journal,
        stop,
        opted,
    )
    if stop:
        assert error.text.startswith(said + " (")
        assert "TWILIO_AUTH_TOKEN" in error.text  # says what to do
    else:
        assert error.text == said


@pytest.mark.parametrize(("status", "outcome"), [(503, Outcome.TRANSIENT), (502, Outcome.TRANSIENT),
                                                 (422, Outcome.PERMANENT)])  # fmt: skip
def test_an_http_error_without_a_twilio_code_is_classified_by_its_status(
    server: HTTPServer, status: int, outcome: Outcome
) -> None:
    server.expect_request(MESSAGES, method="POST").respond_with_data(
        "<html>Service Unavailable</html>", status=status, content_type="text/html"
    )
    error = send_error(transport_for(server))
    assert (error.outcome, error.code) == (outcome, f"http {status}")


def test_a_server_that_hangs_past_the_time_out_leaves_the_message_in_doubt(
    server: HTTPServer,
) -> None:
    release = threading.Event()

    def hang(request: Request) -> Response:
        release.wait(10)
        return Response(json.dumps({"sid": SID}), status=201, content_type="application/json")

    server.expect_request(MESSAGES, method="POST").respond_with_handler(hang)
    started = time.monotonic()
    try:
        error = send_error(transport_for(server, timeout=0.5))
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert (error.outcome, error.code) == (Outcome.UNKNOWN, "timeout")
    assert not error.stop_run


def test_a_connection_dropped_after_the_request_was_sent_leaves_it_in_doubt() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    got = bytearray()

    def read_then_hang_up() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            while b"Body=" not in got:  # the form body is the last thing sent
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got.extend(chunk)

    thread = threading.Thread(target=read_then_hang_up, daemon=True)
    thread.start()
    try:
        error = send_error(TwilioTransport(config(f"http://127.0.0.1:{port}")))
    finally:
        thread.join(5)
        listener.close()
    assert b"POST " + MESSAGES.encode() in got
    assert (error.outcome, error.code) == (Outcome.UNKNOWN, "connection dropped")


def test_a_refused_connection_is_transient() -> None:
    transport = TwilioTransport(config(f"http://127.0.0.1:{free_port()}"))
    error = send_error(transport)
    assert (error.outcome, error.code) == (Outcome.TRANSIENT, "connection refused")


def test_a_host_name_that_does_not_resolve_is_transient() -> None:
    transport = TwilioTransport(config("http://twilio-mock.invalid:4010"))  # RFC 6761: never
    error = send_error(transport)
    assert (error.outcome, error.code) == (Outcome.TRANSIENT, "dns")


def test_a_success_answer_that_cannot_be_read_leaves_it_in_doubt(server: HTTPServer) -> None:
    server.expect_request(MESSAGES, method="POST").respond_with_data("<html>ok</html>", 201)
    error = send_error(transport_for(server))
    assert (error.outcome, error.code) == (Outcome.UNKNOWN, "bad response")


def test_sends_from_many_threads_at_once_all_get_their_sid(server: HTTPServer) -> None:
    count = iter(range(1000))
    lock = threading.Lock()

    def accept(request: Request) -> Response:
        with lock:
            sid = f"SM{next(count):032d}"
        return Response(json.dumps({"sid": sid}), status=201, content_type="application/json")

    server.expect_request(MESSAGES, method="POST").respond_with_handler(accept)
    transport = transport_for(server)
    results: list[str] = []

    def worker() -> None:
        for _ in range(5):
            sid = transport.send(message())
            with lock:
                results.append(sid)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    transport.close()
    assert sorted(results) == [f"SM{i:032d}" for i in range(40)]
