"""Every provider call goes through here: circuit breaker, bulkhead, accounting.

Before the call, a pooled database connection goes back to the pool: a request
waiting on a slow upstream must not hold one of the few connections that
every other page (the health check, the admin) needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import caches
from django.db import connections, router

from otp import events
from otp.conf import otp_settings
from otp.exceptions import ProviderError, ProviderUnavailable
from otp.models import OtpAttempt
from otp.providers import circuit

logger = logging.getLogger(__name__)

T = TypeVar("T")

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _semaphore() -> threading.BoundedSemaphore | None:
    """One semaphore per process, rebuilt if the setting changes."""
    global _slots
    size = otp_settings.PROVIDER_MAX_CONCURRENCY
    if not size:
        return None
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


def release_database_connection() -> None:
    """Return the request's connection to the pool, if it is pooled and no transaction is open.

    The next query takes one again. Without a pool this would reconnect, so
    it is left alone; inside a transaction it must stay.
    """
    connection = connections[router.db_for_write(OtpAttempt)]
    if connection.in_atomic_block or not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        return
    connection.close()


def call_provider(call: Callable[[], T]) -> T:
    """Run ``call`` unless the circuit is open or every slot stays busy.

    A slow upstream then costs at most ``PROVIDER_MAX_CONCURRENCY`` worker
    threads per process; the rest answer 503 at once and stay free for other
    pages.
    """
    release_database_connection()
    try:
        snapshot = circuit.before_call()
    except ProviderUnavailable as err:
        err.nothing_sent = True
        raise
    semaphore = _semaphore()
    if semaphore is not None and not semaphore.acquire(timeout=otp_settings.PROVIDER_QUEUE_TIMEOUT_SECONDS):
        raise ProviderUnavailable("every provider slot of this process is busy", nothing_sent=True)
    try:
        result = call()
    except ProviderError as err:
        if err.breaks_circuit:
            circuit.record_failure()
        else:
            # The provider answered, about this one request (a PIN gone, a
            # number throttled): that says nothing against its health.
            circuit.record_success(snapshot)
        raise
    finally:
        if semaphore is not None:
            semaphore.release()
    circuit.record_success(snapshot)
    return result


#: Seconds over which throttled numbers are counted toward the alert.
THROTTLE_WINDOW = 60


def note_throttled(phone: str, operation: str, retry_after: int | None) -> None:
    """Log a provider 429 for ``phone``; alert once when many numbers are throttled in one window.

    A 429 for one number is that number's limit (Infobip's per-number send or
    verify limits); 429s spreading over many numbers look like a throttle of
    the whole application. Numbers are counted once per window in the
    breaker's shared cache; a cache that fails only loses the alert.
    """
    events.log_event(
        events.PROVIDER_THROTTLED, phone=phone, level=logging.WARNING, operation=operation, retry_after=retry_after
    )
    threshold = otp_settings.PROVIDER_THROTTLE_ALERT_NUMBERS
    if not threshold:
        return
    window = int(time.time()) // THROTTLE_WINDOW
    try:
        cache = caches[otp_settings.CIRCUIT_CACHE]
        if not cache.add(f"otp:throttled:{window}:{events.phone_hash(phone)}", 1, timeout=2 * THROTTLE_WINDOW):
            return  # this number is already counted in this window
        key = f"otp:throttled:{window}"
        cache.add(key, 0, timeout=2 * THROTTLE_WINDOW)
        if cache.incr(key) == threshold:
            events.log_event(
                events.PROVIDER_THROTTLE_ALERT, level=logging.ERROR, numbers=threshold, seconds=THROTTLE_WINDOW
            )
    except Exception:
        logger.warning("provider throttle counter cache unavailable")
