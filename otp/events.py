"""Structured security events, and the request id that ties them together.

Each event is one record on the ``otp.security`` logger whose message is a
single line of ``key=value`` pairs and whose ``otp_event`` attribute holds the
same fields as a dict, for a JSON formatter. The phone appears only masked and
as a keyed hash (stable per number, useless without ``SECRET_KEY``); the PIN,
the pinId and the API key never appear.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

from otp.redaction import mask_phone

logger = logging.getLogger("otp.security")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("otp_request_id", default="")
_client_ip: contextvars.ContextVar[str] = contextvars.ContextVar("otp_client_ip", default="")
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# Event names, after the OWASP logging vocabulary where one fits.
SEND_REQUESTED = "otp_send_requested"
SEND_ACCEPTED = "otp_send_accepted"
SEND_BLOCKED = "otp_send_blocked"
SEND_FAILED = "otp_send_failed"
RESEND_ACCEPTED = "otp_resend_accepted"
VERIFY_SUCCESS = "authn_otp_success"
VERIFY_FAIL = "authn_otp_fail"
LOCKOUT = "authn_login_lock"
RATE_LIMITED = "excess_rate_limit_exceeded"
PROVIDER_ERROR = "otp_provider_error"
PROVIDER_THROTTLED = "otp_provider_throttled"
PROVIDER_THROTTLE_ALERT = "otp_provider_throttle_alert"
BUDGET_ALERT = "otp_budget_alert"
DESTINATION_BLOCKED = "input_validation_fail"
CIRCUIT_OPENED = "otp_provider_circuit_open"
CIRCUIT_CLOSED = "otp_provider_circuit_closed"
SEND_ORPHAN = "otp_send_orphan"
DATABASE_ERROR = "otp_database_error"
LOW_CONVERSION = "otp_low_conversion"
FORWARDED_FOR_INVALID = "otp_forwarded_for_invalid"


def begin_request(header_value: str | None, client_ip: str) -> str:
    """Set the request id (the client's ``X-Request-ID`` if it is safe, else a new one)."""
    value = header_value if header_value and _SAFE_REQUEST_ID.fullmatch(header_value) else uuid.uuid4().hex
    _request_id.set(value)
    _client_ip.set(client_ip)
    return value


def set_client_ip(client_ip: str) -> None:
    """Set the client IP the request's events carry."""
    _client_ip.set(client_ip)


def current_request_id() -> str:
    return _request_id.get()


def phone_hash(phone: str) -> str:
    """A keyed hash of the number for correlating events without storing it."""
    return _keyed_hash(phone, settings.SECRET_KEY)


# A flow logs its number's hash four or five times; the key is part of the
# cache key, so a rotated SECRET_KEY gives new hashes at once.
@lru_cache(maxsize=4096)
def _keyed_hash(phone: str, secret: str) -> str:
    return salted_hmac("otp.events.phone", phone, secret=secret, algorithm="sha256").hexdigest()[:16]


def log_event(event: str, *, phone: str | None = None, level: int = logging.INFO, **fields: Any) -> None:
    """Log one security event; ``fields`` must hold no secrets."""
    if not logger.isEnabledFor(level):
        return
    record: dict[str, Any] = {"event": event, "request_id": _request_id.get() or None}
    if _client_ip.get():
        record["client_ip"] = _client_ip.get()
    if phone:
        record["phone"] = mask_phone(phone)
        record["phone_hash"] = phone_hash(phone)
    record.update(fields)
    # repr() of each value keeps user-influenced text on one line.
    message = " ".join(
        f"{key}={value if isinstance(value, (int, float)) else repr(value)}"
        for key, value in record.items()
        if value is not None
    )
    logger.log(level, message, extra={"otp_event": record})


class OncePerInterval:
    """Lets one event through per ``interval`` seconds, so a flood cannot flood the log."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._next_at = float("-inf")
        self._held_back = 0

    def admit(self) -> int | None:
        """How many events were held back since the last one admitted, or ``None`` to hold this one back."""
        with self._lock:
            now = self.clock()
            if now < self._next_at:
                self._held_back += 1
                return None
            held_back, self._held_back = self._held_back, 0
            self._next_at = now + self.interval
            return held_back
