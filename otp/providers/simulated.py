"""A provider that behaves like Infobip 2FA in process, with no network.

It generates PINs with the OS's CSPRNG, keeps only a keyed hash of each, and
answers verifications with Infobip's semantics: time to live, a per-PIN attempt
limit, a single successful verification, and the same ``pinError`` values.
Subclasses decide how a message is "delivered".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from otp.conf import otp_settings
from otp.exceptions import PinNotFound
from otp.providers.base import (
    NO_MORE_PIN_ATTEMPTS,
    TTL_EXPIRED,
    WRONG_PIN,
    BaseProvider,
    SendResult,
    VerifyResult,
)


@dataclass
class _StoredPin:
    phone: str
    pin_hash: bytes
    expires_at: float
    attempts_left: int
    verified: bool = False


class SimulatedProvider(BaseProvider):
    """Infobip-like PIN store; subclasses implement :meth:`deliver`.

    Options: ``message_template`` (with ``{pin}``), ``ttl_seconds``,
    ``pin_attempts`` and ``pin_length``; by default these follow the app's own
    policy so the simulated upstream agrees with it.
    """

    provider_name: ClassVar[str] = "simulated"
    # Class-level so every instance (and thread) of a process shares one store.
    _pins: ClassVar[dict[str, _StoredPin]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _key: ClassVar[bytes] = secrets.token_bytes(32)

    def __init__(self, *, message_template: str = "Your verification code is {pin}", **options: Any) -> None:
        super().__init__(**options)
        self.message_template = message_template

    # Policy follows the app's settings unless an option pins it.
    @property
    def ttl_seconds(self) -> float:
        return float(self.options.get("ttl_seconds", otp_settings.CODE_TTL_SECONDS))

    @property
    def pin_attempts(self) -> int:
        return int(self.options.get("pin_attempts", otp_settings.MAX_VERIFY_ATTEMPTS))

    @property
    def pin_length(self) -> int:
        return int(self.options.get("pin_length", otp_settings.PIN_LENGTH))

    def _hash(self, pin_id: str, pin: str) -> bytes:
        return hmac.new(self._key, f"{pin_id}:{pin}".encode(), hashlib.sha256).digest()

    def send(self, phone: str) -> SendResult:
        pin = "".join(secrets.choice("0123456789") for _ in range(self.pin_length))
        pin_id = secrets.token_hex(16).upper()
        stored = _StoredPin(
            phone=phone,
            pin_hash=self._hash(pin_id, pin),
            expires_at=time.time() + self.ttl_seconds,
            attempts_left=self.pin_attempts,
        )
        with self._lock:
            self._pins[pin_id] = stored
        self.deliver(phone=phone, pin=pin, pin_id=pin_id, text=self.message_template.format(pin=pin))
        return SendResult(pin_id=pin_id)

    def verify(self, pin_id: str, pin: str) -> VerifyResult:
        with self._lock:
            stored = self._pins.get(pin_id)
            if stored is None:
                raise PinNotFound("unknown pinId", status_code=404)
            # Infobip-like order: exhausted (or already used) -> expired -> compare.
            if stored.attempts_left <= 0 or stored.verified:
                return VerifyResult(verified=False, pin_error=NO_MORE_PIN_ATTEMPTS, attempts_remaining=0)
            if time.time() >= stored.expires_at:
                return VerifyResult(verified=False, pin_error=TTL_EXPIRED,
                                    attempts_remaining=stored.attempts_left)
            if hmac.compare_digest(stored.pin_hash, self._hash(pin_id, pin)):
                stored.verified = True
                return VerifyResult(verified=True, attempts_remaining=0)
            stored.attempts_left -= 1
            return VerifyResult(verified=False, pin_error=WRONG_PIN,
                                attempts_remaining=stored.attempts_left)

    def deliver(self, *, phone: str, pin: str, pin_id: str, text: str) -> None:
        """Hand the message to its destination. Subclasses must implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement deliver()")

    @classmethod
    def forget_all(cls) -> None:
        """Drop every stored PIN (tests)."""
        with cls._lock:
            cls._pins.clear()
