"""A provider that behaves like Infobip 2FA in process, with no network.

Each PIN is derived from its random pinId with a keyed HMAC under a secret
drawn from the OS's CSPRNG when the process starts, so the provider stores no
PIN at all, yet can check one and deliver it again on resend. It answers with
Infobip's semantics: time to live, a per-PIN attempt limit, a single
successful verification, and the same ``pinError`` values. Subclasses decide
how a message is "delivered".
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
from otp.providers import webotp
from otp.providers.base import (
    NO_MORE_PIN_ATTEMPTS,
    SMS,
    TTL_EXPIRED,
    WRONG_PIN,
    BaseProvider,
    SendResult,
    VerifyResult,
)


@dataclass
class _PinState:
    phone: str
    length: int
    expires_at: float
    attempts_left: int
    verified: bool = False


class SimulatedProvider(BaseProvider):
    """Infobip-like PIN bookkeeping; subclasses implement :meth:`deliver`.

    Options: ``message_template`` (with ``{pin}``), ``ttl_seconds``,
    ``pin_attempts`` and ``pin_length``; by default these follow the app's own
    policy so the simulated upstream agrees with it. With
    ``OTP["WEBOTP_DOMAIN"]`` set, an SMS reads as the provisioned Infobip
    template's does (a headline, a blank line, ``@host #code``), so a developer
    sees the line browsers read; calls keep ``message_template``.
    """

    provider_name: ClassVar[str] = "simulated"
    # Class-level so every instance (and thread) of a process shares one store.
    _pins: ClassVar[dict[str, _PinState]] = {}
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

    def _pin_for(self, pin_id: str, length: int) -> str:
        digest = hmac.new(self._key, pin_id.encode(), hashlib.sha256).digest()
        # 256 bits reduced modulo 10**length: the bias is far below 2**-200.
        return str(int.from_bytes(digest, "big") % 10**length).zfill(length)

    def send(self, phone: str, *, channel: str = SMS) -> SendResult:
        pin_id = secrets.token_hex(16).upper()
        state = _PinState(
            phone=phone,
            length=self.pin_length,
            expires_at=time.time() + self.ttl_seconds,
            attempts_left=self.pin_attempts,
        )
        with self._lock:
            self._pins[pin_id] = state
        self._deliver_pin(pin_id, state, channel)
        return SendResult(pin_id=pin_id)

    def resend(self, pin_id: str, *, channel: str = SMS) -> SendResult:
        with self._lock:
            state = self._pins.get(pin_id)
            # Like Infobip: a PIN that can no longer be verified is not resent.
            if state is None or state.verified or state.attempts_left <= 0 or time.time() >= state.expires_at:
                raise PinNotFound("unknown or closed pinId", status_code=404)
        self._deliver_pin(pin_id, state, channel)
        return SendResult(pin_id=pin_id)

    def _deliver_pin(self, pin_id: str, state: _PinState, channel: str) -> None:
        pin = self._pin_for(pin_id, state.length)
        self.deliver(phone=state.phone, pin=pin, pin_id=pin_id, text=self.message_text(pin, channel), channel=channel)

    def message_text(self, pin: str, channel: str) -> str:
        """The text that carries ``pin`` by ``channel``."""
        domain = otp_settings.WEBOTP_DOMAIN
        if domain and channel == SMS:
            return webotp.render(webotp.origin_bound(webotp.DEFAULT_HEADLINE, domain), pin)
        return self.message_template.format(pin=pin)

    def verify(self, pin_id: str, pin: str) -> VerifyResult:
        with self._lock:
            state = self._pins.get(pin_id)
            if state is None:
                raise PinNotFound("unknown pinId", status_code=404)
            # Infobip-like order: exhausted (or already used) -> expired -> compare.
            if state.attempts_left <= 0 or state.verified:
                return VerifyResult(verified=False, pin_error=NO_MORE_PIN_ATTEMPTS, attempts_remaining=0)
            if time.time() >= state.expires_at:
                return VerifyResult(verified=False, pin_error=TTL_EXPIRED, attempts_remaining=state.attempts_left)
            if hmac.compare_digest(self._pin_for(pin_id, state.length).encode(), pin.encode()):
                state.verified = True
                return VerifyResult(verified=True, attempts_remaining=0)
            state.attempts_left -= 1
            return VerifyResult(verified=False, pin_error=WRONG_PIN, attempts_remaining=state.attempts_left)

    def deliver(self, *, phone: str, pin: str, pin_id: str, text: str, channel: str = SMS) -> None:
        """Hand the message to its destination. Subclasses must implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement deliver()")

    @classmethod
    def forget_all(cls) -> None:
        """Drop every PIN's state (tests)."""
        with cls._lock:
            cls._pins.clear()
