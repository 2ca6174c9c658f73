"""Per-channel pacing: a token bucket shared by the worker threads, so a practice stays inside
its provider's throughput. A provider's "too many requests" halves the rate for the rest of
the run (and sets one, if none was configured)."""

from __future__ import annotations

import threading
import time

THROTTLED_RATE = 5.0  # per second, after a 429 when no rate was configured
MIN_RATE = 0.5


class TokenBucket:
    """`take()` blocks until a send may start. A rate of 0 means no limit."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._stamp = time.monotonic()
        self._guard = threading.Lock()

    def take(self) -> None:
        while True:
            with self._guard:
                if not self.rate:
                    return
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)

    def slow_down(self) -> None:
        with self._guard:
            self.rate = max(MIN_RATE, self.rate / 2) if self.rate else THROTTLED_RATE
