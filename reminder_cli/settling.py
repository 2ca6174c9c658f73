"""Asking the SMS provider what only it knows, within a run's time budget:

- settling in-doubt SMS: a message to that number from our sender since the claim, with the
  same body, means it was sent (journal its SID); Twilio answering with no such message for
  a claim older than SETTLE_AFTER means it was never accepted (back to pending); no answer
  leaves it in doubt. Each decision and its reason is journaled on the reminder and attempt.
- delivery status: the final status of recently accepted SMS (delivered, undelivered,
  failed with its error code), for `status`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from reminder_cli.errors import SendError
from reminder_cli.journal import Journal
from reminder_cli.render import Renderer, RenderError

SETTLE_AFTER = timedelta(minutes=5)  # Twilio lists an accepted message well within this
LOOK_BACK = timedelta(days=3)
log = logging.getLogger(__name__)


class ProviderLookup(Protocol):
    def find_sent(
        self, to: str, body: str, since: datetime, fingerprint: str | None = None
    ) -> str | None: ...

    def fetch_status(self, sid: str) -> tuple[str, str | None]: ...


def settle_in_doubt_sms(
    journal: Journal,
    provider: ProviderLookup,
    renderer: Renderer,
    now: datetime,
    time_left: Callable[[], bool],
    limit: int = 50,
) -> Counter[str]:
    """Settle what the provider can answer; returns counts of sent / pending / unknown."""
    counts: Counter[str] = Counter()
    for claimed in journal.list_in_doubt_sms(now - LOOK_BACK, limit):
        if not time_left():
            break
        claimed_at = claimed.claimed_at or now
        try:  # match what was sent: its fingerprint, kept since the claim (else re-render)
            body = "" if claimed.fingerprint else renderer.render(claimed).body
            sid = provider.find_sent(claimed.recipient, body, claimed_at, claimed.fingerprint)
        except (SendError, RenderError) as exc:
            text = f"{exc.code}: {exc.text}" if isinstance(exc, SendError) else str(exc)
            journal.record_settle_note(claimed.reminder_id, f"still in doubt ({text})", now)
            counts["unknown"] += 1
            continue
        if sid:
            note = f"settled with Twilio: it accepted this message as {sid}"
            if journal.record_settled(claimed, sid, note, now):
                counts["sent"] += 1
        elif now - claimed_at >= SETTLE_AFTER:
            note = (
                "settled with Twilio: no such message since the claim; it was never "
                "accepted, so it goes out again"
            )
            if journal.record_settled(claimed, None, note, now):
                counts["pending"] += 1
        else:
            note = (
                f"still in doubt: Twilio lists no such message yet, but it was claimed only "
                f"{int((now - claimed_at).total_seconds() // 60)} min ago; asking again next run"
            )
            journal.record_settle_note(claimed.reminder_id, note, now)
            counts["unknown"] += 1
        log.info(
            "in-doubt SMS settled",
            extra={"reminder_id": claimed.reminder_id, "outcome": "found" if sid else "not found"},
        )
    return counts


def sync_delivery_status(
    journal: Journal,
    provider: ProviderLookup,
    now: datetime,
    time_left: Callable[[], bool],
    limit: int = 200,
) -> Counter[str]:
    """Fetch and store the latest status of SMS accepted in the last days."""
    counts: Counter[str] = Counter()
    for dispatch_id, sid in journal.list_sms_to_sync(now - LOOK_BACK, limit):
        if not time_left():
            break
        try:
            status, error_code = provider.fetch_status(sid)
        except SendError as exc:
            counts["unanswered"] += 1
            if exc.stop_run:
                break
            continue
        journal.record_delivery(dispatch_id, status, error_code, now)
        counts[status] += 1
    return counts
