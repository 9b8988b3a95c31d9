"""Every provider call goes through here: circuit breaker, bulkhead, accounting."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from otp import circuit
from otp.conf import otp_settings
from otp.exceptions import PinNotFound, ProviderError, ProviderUnavailable

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


def call_provider(call: Callable[[], T]) -> T:
    """Run ``call`` unless the circuit is open or every slot stays busy.

    A slow upstream then costs at most ``PROVIDER_MAX_CONCURRENCY`` worker
    threads per process; the rest answer 503 at once and stay free for other
    pages.
    """
    circuit.before_call()
    semaphore = _semaphore()
    if semaphore is not None and not semaphore.acquire(timeout=otp_settings.PROVIDER_QUEUE_TIMEOUT_SECONDS):
        raise ProviderUnavailable("every provider slot of this process is busy")
    try:
        result = call()
    except PinNotFound:
        circuit.record_success()  # the provider answered; the PIN is just gone
        raise
    except ProviderError:
        circuit.record_failure()
        raise
    finally:
        if semaphore is not None:
            semaphore.release()
    circuit.record_success()
    return result
