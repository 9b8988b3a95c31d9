"""How long a failed verify takes, so that its timing does not tell whether a code is pending.

A failed verify that asked the provider lasts as long as the provider took to
answer; one that did not (no pending code, expired, out of attempts, locked)
would answer at once. So every failure waits until ``VERIFY_FAILURE_MIN_SECONDS``
have passed since the verify began, and one that did not ask the provider
waits until the median of how long this process's recent verifies took to get
the provider's answer (counted from the same start), capped at
``VERIFY_FAILURE_MAX_SECONDS``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from otp.conf import otp_settings

clock = time.monotonic  # replaced in tests

#: Provider answers the median is taken over: enough to ride out one slow
#: call, few enough to follow the provider when its latency changes.
WINDOW = 64


class RoundTrips:
    """The durations of the last ``size`` verifies that got the provider's answer, in seconds (thread-safe)."""

    def __init__(self, size: int = WINDOW) -> None:
        self._durations: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._durations.append(seconds)

    def median(self) -> float | None:
        with self._lock:
            durations = list(self._durations)
        return statistics.median(durations) if durations else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._durations)


#: This process's window.
round_trips = RoundTrips()


def failure_floor(*, asked_provider: bool) -> float:
    """Seconds a failed verify lasts at least, counted from its start."""
    minimum = float(otp_settings.VERIFY_FAILURE_MIN_SECONDS or 0)
    median = None if asked_provider else round_trips.median()
    if median is None:
        return minimum
    return max(minimum, min(median, float(otp_settings.VERIFY_FAILURE_MAX_SECONDS or 0)))


class VerifyTimer:
    """One verify's start, and whether it asked the provider."""

    def __init__(self) -> None:
        self.started = clock()
        self.asked_provider = False

    @contextmanager
    def asking_provider(self) -> Iterator[None]:
        """Around the provider call; an answer records how long the verify took to get it."""
        self.asked_provider = True
        yield
        round_trips.record(clock() - self.started)

    def remaining(self) -> float:
        """Seconds left before this verify's failure floor."""
        return failure_floor(asked_provider=self.asked_provider) - (clock() - self.started)
