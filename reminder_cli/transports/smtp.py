"""The SMTP transport (smtplib): STARTTLS or implicit TLS, login, a time-out on every step.

Each worker thread keeps its own connection open across messages and reconnects after an
error or when the server drops it. Classification follows the SMTP conversation:
- anything before DATA is sent (connect, TLS, MAIL, RCPT) is a definite answer: 4xx and
  network errors are transient, 5xx permanent;
- a failure while the message is being sent or before the server's final reply (time-out,
  dropped connection) is unknown: the server may have queued it;
- the final reply decides: 250 sent, 4xx transient, 5xx permanent.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import threading
from email.utils import parseaddr

from reminder_cli.config import EmailConfig
from reminder_cli.errors import Outcome, SendError
from reminder_cli.models import Message
from reminder_cli.transports.email_message import build_email


def _by_code(code: int, text: bytes | str, stage: str) -> SendError:
    reply = text.decode(errors="replace") if isinstance(text, bytes) else text
    outcome = Outcome.PERMANENT if 500 <= code < 600 else Outcome.TRANSIENT
    return SendError(outcome, f"smtp {code}", f"{stage}: {' '.join(reply.split())}")


def _network(exc: BaseException, stage: str, outcome: Outcome = Outcome.TRANSIENT) -> SendError:
    if isinstance(exc, TimeoutError | socket.timeout):
        code = "timeout"
    elif isinstance(exc, socket.gaierror):
        code = "dns"
    elif isinstance(exc, ConnectionRefusedError):
        code = "connection refused"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        code = "disconnected"
    else:
        code = type(exc).__name__
    detail = getattr(exc, "strerror", None) or str(exc) or code
    return SendError(outcome, code, f"{stage}: {detail}")


class SmtpTransport:
    name = "smtp"

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self.sender_address = parseaddr(config.sender)[1]
        self._local = threading.local()
        self._open: list[smtplib.SMTP] = []
        self._guard = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        smtp: smtplib.SMTP | None = None
        try:
            if cfg.ssl:
                smtp = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            smtp.ehlo_or_helo_if_needed()
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
        except smtplib.SMTPAuthenticationError as exc:
            self._discard(smtp)
            raise SendError(
                Outcome.TRANSIENT,
                f"smtp {exc.smtp_code}",
                "login refused: check [email] username and the SMTP_PASSWORD variable",
                stop_run=True,
            )
        except smtplib.SMTPNotSupportedError:
            self._discard(smtp)
            raise SendError(
                Outcome.TRANSIENT,
                "smtp auth",
                "the server offers no login (AUTH); remove [email] username, or turn on "
                "starttls if it offers AUTH only over TLS",
                stop_run=True,
            )
        except smtplib.SMTPResponseException as exc:
            self._discard(smtp)
            raise _by_code(exc.smtp_code, exc.smtp_error, "connect") from None
        except (OSError, smtplib.SMTPException) as exc:
            self._discard(smtp)
            raise _network(exc, f"connect to {cfg.host}:{cfg.port}") from None
        with self._guard:
            self._open.append(smtp)
        return smtp

    def _discard(self, smtp: smtplib.SMTP | None) -> None:
        if smtp is None:
            return
        with self._guard:
            if smtp in self._open:
                self._open.remove(smtp)
        with contextlib.suppress(Exception):
            smtp.close()
        if getattr(self._local, "smtp", None) is smtp:
            self._local.smtp = None

    def _envelope(self, smtp: smtplib.SMTP, to: str) -> None:
        code, reply = smtp.mail(self.sender_address)
        if code != 250:
            smtp.rset()
            raise _by_code(code, reply, "MAIL FROM")
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            smtp.rset()
            raise _by_code(code, reply, "RCPT TO")

    def send(self, message: Message) -> str:
        data = build_email(message, self.config.sender)
        for tries_left in (1, 0):
            smtp = getattr(self._local, "smtp", None)
            reused = smtp is not None
            if smtp is None:
                smtp = self._local.smtp = self._connect()
            try:
                self._envelope(smtp, message.to)
            except SendError:
                raise
            except (OSError, smtplib.SMTPException) as exc:
                self._discard(smtp)
                if reused and tries_left:  # an idle connection the server closed: reconnect
                    continue
                raise _network(exc, "before DATA") from None
            try:
                code, reply = smtp.data(data)  # raises only if DATA itself is refused
            except smtplib.SMTPDataError as exc:  # the server refused it: a definite answer
                with contextlib.suppress(Exception):
                    smtp.rset()
                raise _by_code(exc.smtp_code, exc.smtp_error, "DATA") from None
            except (OSError, smtplib.SMTPException) as exc:
                self._discard(smtp)
                raise _network(exc, "during DATA, the server may have the message", Outcome.UNKNOWN)
            if code != 250:  # the final reply refused the message: spam filter, greylisting
                with contextlib.suppress(Exception):
                    smtp.rset()
                raise _by_code(code, reply, "end of DATA")
            text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
            return " ".join(text.split()) or message.headers.get("Message-ID", "")
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._guard:
            connections, self._open = self._open, []
        for smtp in connections:
            with contextlib.suppress(Exception):
                smtp.quit()
