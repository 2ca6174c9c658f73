"""The Twilio SMS transport (with twilio_errors, the only code that imports the `twilio` SDK).

It sends through `client.messages.create`, settles in-doubt messages from Twilio's message
list, fetches delivery status, and checks the `[sms]` settings Twilio needs. Every failure
becomes our SendError through the one table in twilio_errors, CLASSIFICATION.
Each worker thread gets its own SDK client (and so its own HTTP session): neither the SDK
client nor a `requests` session promises to be thread-safe. The auth token goes only to the
SDK; no error text or log line of ours contains it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from reminder_cli.config import SmsConfig
from reminder_cli.errors import Outcome, SendError
from reminder_cli.models import Message
from reminder_cli.smstext import body_fingerprint, normalise_sms
from reminder_cli.transports.twilio_config import check_config
from reminder_cli.transports.twilio_errors import classify, error_from

CLOCK_SKEW = timedelta(minutes=2)  # ours vs Twilio's, when comparing creation times
FIND_LIMIT = 200  # messages to one number we are willing to look through


class RedirectingHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends every Twilio request to `base_url`'s scheme and host, keeping path and query."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        target = urlsplit(base_url)
        self._scheme, self._netloc = target.scheme, target.netloc

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


class TwilioTransport:
    """Sends SMS with the Twilio SDK; `send` may be called from several threads at once.

    An `http_client` passed in is shared by all threads as it is (tests use this)."""

    name = "twilio"

    def __init__(self, config: SmsConfig, http_client: Any | None = None) -> None:
        self.config = config
        self._given_http = http_client
        self._local = threading.local()
        self._guard = threading.Lock()
        self._own_http: list[Any] = []
        self.where = urlsplit(config.api_base_url).netloc or "api.twilio.com"

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            http = self._given_http
            if http is None:
                cfg = self.config
                if cfg.api_base_url:
                    http = RedirectingHttpClient(cfg.api_base_url, cfg.timeout)
                else:  # the SDK's default client has no time-out at all
                    http = TwilioHttpClient(timeout=cfg.timeout)
                with self._guard:
                    self._own_http.append(http)
            client = Client(self.config.account_sid, self.config.auth_token, http_client=http)
            self._local.client = client
        return client

    def _fail(self, exc: Exception) -> SendError:
        return error_from(exc, self.where, self.config.timeout)

    def send(self, message: Message) -> str:
        """Hand the SMS to Twilio; return its message SID, or raise a classified SendError."""
        cfg = self.config
        params: dict[str, str] = {"to": message.to, "body": message.body}
        if cfg.from_number:
            params["from_"] = cfg.from_number
        if cfg.messaging_service_sid:
            params["messaging_service_sid"] = cfg.messaging_service_sid
        if cfg.status_callback:
            params["status_callback"] = cfg.status_callback
        try:
            created = self._client().messages.create(**params)
        except Exception as exc:
            raise self._fail(exc) from None
        sid = getattr(created, "sid", None)
        if not sid:
            raise classify("bad response", f"{self.where} accepted it but sent no message SID")
        return str(sid)

    def find_sent(
        self, to: str, body: str, since: datetime, fingerprint: str | None = None
    ) -> str | None:
        """The SID of a message with `body` that Twilio accepted for `to` from our sender at
        or after `since`; None if Twilio answered and none matched. Bodies are compared after
        normalise_sms on both sides, so a sender that swaps curly quotes still matches.

        Raises SendError(UNKNOWN) if Twilio could not be asked or the list was too long to
        read. It does not filter on DateSent: a message still queued has none yet.
        With a `fingerprint` (smstext.body_fingerprint of what was sent), bodies are matched by
        it instead of by `body`."""
        cfg = self.config
        query: dict[str, Any] = {"to": to, "limit": FIND_LIMIT + 1, "page_size": 50}
        if cfg.from_number:
            query["from_"] = cfg.from_number
        earliest = since.astimezone(UTC) - CLOCK_SKEW
        wanted = normalise_sms(body)
        seen = 0
        try:
            for found in self._client().messages.stream(**query):
                seen += 1
                created = found.date_created
                if created is not None and created < earliest:
                    continue
                if not cfg.from_number and found.messaging_service_sid != cfg.messaging_service_sid:
                    continue
                listed = found.body or ""
                same = (
                    body_fingerprint(listed) == fingerprint
                    if fingerprint
                    else normalise_sms(listed) == wanted
                )
                if found.sid and same:
                    return str(found.sid)
        except Exception as exc:
            error = self._fail(exc)
            raise SendError(
                Outcome.UNKNOWN,
                error.code,
                f"could not ask Twilio: {error.text}",
                stop_run=error.stop_run,
            ) from None
        if seen > FIND_LIMIT:
            raise SendError(
                Outcome.UNKNOWN,
                "too many",
                f"more than {FIND_LIMIT} messages to {to}; not all checked",
            )
        return None

    def fetch_status(self, sid: str) -> tuple[str, str | None]:
        """Twilio's current status of message `sid` (queued, sent, delivered, undelivered,
        failed...) and its error code, if any, as text (e.g. "30003")."""
        try:
            found = self._client().messages(sid).fetch()
        except Exception as exc:
            raise self._fail(exc) from None
        code = found.error_code
        return str(found.status), (str(code) if code not in (None, "", 0) else None)

    def close(self) -> None:
        """Close the HTTP sessions this transport opened; a later call opens new ones."""
        with self._guard:
            own, self._own_http = self._own_http, []
            self._local = threading.local()
        for http in own:
            if http.session is not None:
                http.session.close()


__all__ = ["RedirectingHttpClient", "TwilioTransport", "check_config"]
