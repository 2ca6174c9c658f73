"""How the Twilio transport classifies failures: one table, CLASSIFICATION, from the code
we journal ("twilio 21211", "http 503", "timeout"...) to an outcome for the reminder, and the
functions that turn the SDK's exceptions and `requests`' network errors into our SendError.

The text journaled with a code is Twilio's own message (never the SDK's str(exc), which has
terminal colours) or a line of ours; neither ever contains the auth token.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.base.version import Version
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from reminder_cli.errors import Outcome, SendError

TRANSIENT, PERMANENT, UNKNOWN = Outcome.TRANSIENT, Outcome.PERMANENT, Outcome.UNKNOWN


@dataclass(frozen=True)
class Verdict:
    """What a failure means for the reminder. `meaning` is the table's wording for people;
    when the failure stops the run it is added to the journaled text as advice."""

    outcome: Outcome
    meaning: str
    stop_run: bool = False  # every other SMS would fail the same way: stop claiming
    opted_out: bool = False  # remember the number; later SMS to it are suppressed


_AUTH = "check [sms] account_sid and the TWILIO_AUTH_TOKEN variable"

# The one classification table. Keys are the codes we journal: "twilio <error code>" first,
# then "http <status>", then "http <class>xx"; the rest are failures below HTTP.
CLASSIFICATION: dict[str, Verdict] = {
    "twilio 20429": Verdict(TRANSIENT, "too many requests"),
    "twilio 20003": Verdict(PERMANENT, f"authentication failed: {_AUTH}", stop_run=True),
    "twilio 21660": Verdict(TRANSIENT, "from_number is not on this account", stop_run=True),
    "twilio 21211": Verdict(PERMANENT, "invalid To number"),
    "twilio 21408": Verdict(PERMANENT, "sending to this region is not enabled"),
    "twilio 21610": Verdict(PERMANENT, "the recipient unsubscribed (STOP)", opted_out=True),
    "twilio 21614": Verdict(PERMANENT, "not a mobile number"),
    "http 401": Verdict(TRANSIENT, f"authentication failed: {_AUTH}", stop_run=True),
    "http 429": Verdict(TRANSIENT, "too many requests"),
    "http 5xx": Verdict(TRANSIENT, "Twilio server error, the message was not accepted"),
    "http 4xx": Verdict(PERMANENT, "Twilio refused the message"),
    "http other": Verdict(UNKNOWN, "unexpected HTTP answer"),
    "connection refused": Verdict(TRANSIENT, "nothing listens there; nothing was sent"),
    "dns": Verdict(TRANSIENT, "the host name did not resolve; nothing was sent"),
    "connect failed": Verdict(TRANSIENT, "no connection; nothing was sent"),
    "connect timeout": Verdict(TRANSIENT, "no connection in time; nothing was sent"),
    "tls": Verdict(TRANSIENT, "TLS certificate refused; nothing was sent"),
    "timeout": Verdict(UNKNOWN, "no answer in time after the request was sent"),
    "connection dropped": Verdict(UNKNOWN, "connection lost after the request was sent"),
    "bad response": Verdict(UNKNOWN, "Twilio answered with something unreadable"),
    "internal": Verdict(UNKNOWN, "unexpected error in the SDK"),
}

_SDK_PREFIX = re.compile(r"^Unable to \w+ (record|page)(: )?")


def verdict_for(*keys: str) -> Verdict:
    """The first of `keys` in CLASSIFICATION (an unlisted failure is in doubt)."""
    return next(
        (CLASSIFICATION[k] for k in keys if k in CLASSIFICATION), CLASSIFICATION["internal"]
    )


def classify(code: str, text: str, *fallbacks: str) -> SendError:
    """Our SendError for a journal `code` and `text`, decided by CLASSIFICATION: the entry of
    `code`, else of the first of `fallbacks` listed there, else "internal" (unknown)."""
    verdict = verdict_for(code, *fallbacks)
    return SendError(
        verdict.outcome, code, text, stop_run=verdict.stop_run, opted_out=verdict.opted_out
    )


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _rest_error(exc: TwilioRestException | TwilioServiceException) -> SendError:
    """An HTTP error answer: journaled as "twilio <code>" when Twilio gave its own error code
    (the SDK puts the HTTP status there when it did not), else "http <status>"."""
    status = int(exc.status or 0)
    twilio_code = exc.code if isinstance(exc.code, int) and exc.code >= 10000 else None
    if isinstance(exc, TwilioServiceException):
        said = _one_line(exc.detail or exc.title or "")
    else:  # exc.msg is the SDK's "Unable to create record: " and then Twilio's own message
        said = _SDK_PREFIX.sub("", _one_line(exc.msg or ""))
    by_status = f"http {status}", f"http {status // 100}xx" if status >= 400 else "http other"
    code = f"twilio {twilio_code}" if twilio_code else by_status[0]
    verdict = verdict_for(code, *by_status)
    text = said or f"HTTP {status}"
    if verdict.stop_run:  # the run stops on this one: say what to do about it
        text = f"{text} ({verdict.meaning})"
    return classify(code, text, *by_status)


def _network_error(exc: requests.RequestException, where: str, timeout: float) -> SendError:
    """A failure below HTTP. Only a failure known to happen while connecting (so before any
    byte of the request went out) is transient; anything else may have reached Twilio."""
    if isinstance(exc, requests.ConnectTimeout):
        return classify("connect timeout", f"no connection to {where} within {timeout:g} s")
    if isinstance(exc, requests.ReadTimeout):
        return classify(
            "timeout", f"no answer from {where} within {timeout:g} s; Twilio may have it"
        )
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, MaxRetryError):
        reason = inner.reason
        root: BaseException | None = reason
        while root is not None and (root.__cause__ or root.__context__) is not None:
            root = root.__cause__ or root.__context__
        if isinstance(reason, NameResolutionError) or isinstance(root, socket.gaierror):
            return classify("dns", f"cannot look up the host name of {where}")
        if isinstance(root, ConnectionRefusedError):
            return classify("connection refused", f"{where} refused the connection")
        if isinstance(root, ssl.SSLCertVerificationError):
            return classify("tls", f"the TLS certificate of {where} was not accepted")
        if isinstance(reason, NewConnectionError):
            return classify("connect failed", f"cannot connect to {where}")
    return classify("connection dropped", f"the connection to {where} broke before Twilio answered")


def error_from(exc: Exception, where: str, timeout: float) -> SendError:
    """Our SendError for anything the SDK or its HTTP session raised."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        return _rest_error(exc)
    response = exc.args[1] if isinstance(exc, TwilioException) and len(exc.args) > 1 else None
    if hasattr(response, "status_code"):  # a list page: the SDK raises a bare TwilioException
        return _rest_error(Version.exception("GET", "", response, str(exc.args[0])))
    if isinstance(exc, requests.RequestException):
        return _network_error(exc, where, timeout)
    if isinstance(exc, ValueError | KeyError):  # a 2xx answer we could not parse
        return classify("bad response", f"unreadable answer from {where}")
    return classify("internal", f"{type(exc).__name__} in the twilio SDK")
