"""A circuit breaker around the provider, with its state in a shared cache.

After ``CIRCUIT_FAILURES`` consecutive provider failures the circuit opens:
calls fail at once (503) for ``CIRCUIT_OPEN_SECONDS``. Then one request, the
first to claim the probe slot, reaches the provider; its success closes the
circuit, its failure opens it again. With Redis behind ``CIRCUIT_CACHE`` every
process and instance of a deployment sees the same state.

The breaker never blocks on its own cache: if the cache fails, calls go
through (the IP limiter in the same cache already fails closed).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import caches

from otp import events
from otp.conf import otp_settings
from otp.exceptions import ProviderUnavailable

logger = logging.getLogger(__name__)

FAILURES_KEY = "otp:circuit:failures"
OPEN_UNTIL_KEY = "otp:circuit:open_until"
PROBE_KEY = "otp:circuit:probe"

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def _cache():  # type: ignore[no-untyped-def]
    return caches[otp_settings.CIRCUIT_CACHE]


def _enabled() -> bool:
    return bool(otp_settings.CIRCUIT_FAILURES)


Snapshot = dict[str, Any]


def _snapshot() -> Snapshot:
    """The shared failure count and open deadline, in one cache round trip."""
    if not _enabled():
        return {}
    try:
        return dict(_cache().get_many([FAILURES_KEY, OPEN_UNTIL_KEY]))
    except Exception:
        return {}


def _state_of(snapshot: Snapshot) -> str:
    open_until = snapshot.get(OPEN_UNTIL_KEY)
    if not open_until:
        return CLOSED
    return OPEN if time.time() < open_until else HALF_OPEN


def state() -> str:
    """``closed``, ``open`` (failing fast) or ``half_open`` (a probe may pass)."""
    return _state_of(_snapshot())


def before_call() -> Snapshot:
    """Raise :class:`ProviderUnavailable` while the circuit is open.

    :returns: what the breaker read, for :func:`record_success` to reuse.
    """
    snapshot = _snapshot()
    current = _state_of(snapshot)
    if current == CLOSED:
        return snapshot
    if current == HALF_OPEN:
        try:
            # Only one caller wins the probe; it has the open period to finish.
            if _cache().add(PROBE_KEY, 1, timeout=otp_settings.CIRCUIT_OPEN_SECONDS):
                return snapshot
        except Exception:
            return snapshot
    raise ProviderUnavailable("the provider circuit is open")


def record_success(snapshot: Snapshot | None = None) -> None:
    """Reset the failure count after a good answer.

    ``snapshot`` is what :func:`before_call` read for this call: when it shows
    no failures and no open circuit there is nothing to reset, and no second
    round trip is made.
    """
    if not _enabled():
        return
    try:
        cache = _cache()
        current = snapshot if snapshot is not None else _snapshot()
        if current.get(FAILURES_KEY) or current.get(OPEN_UNTIL_KEY):
            cache.delete_many([FAILURES_KEY, OPEN_UNTIL_KEY, PROBE_KEY])
            if current.get(OPEN_UNTIL_KEY):
                events.log_event(events.CIRCUIT_CLOSED, level=logging.WARNING)
    except Exception:
        logger.warning("circuit breaker cache unavailable")


def record_failure() -> None:
    if not _enabled():
        return
    try:
        cache = _cache()
        cache.add(FAILURES_KEY, 0, timeout=None)
        failures = cache.incr(FAILURES_KEY)
        if failures >= otp_settings.CIRCUIT_FAILURES:
            seconds = otp_settings.CIRCUIT_OPEN_SECONDS
            cache.set(OPEN_UNTIL_KEY, time.time() + seconds, timeout=None)
            cache.delete(PROBE_KEY)
            events.log_event(events.CIRCUIT_OPENED, level=logging.ERROR, failures=failures, seconds=seconds)
    except Exception:
        logger.warning("circuit breaker cache unavailable")


def reset() -> None:
    """Close the circuit and forget failures (tests, operators)."""
    _cache().delete_many([FAILURES_KEY, OPEN_UNTIL_KEY, PROBE_KEY])
