"""The provider contract: transport only, no database and no policy.

A provider owns the PIN. ``send`` asks it to create and deliver one and
returns its reference (Infobip's ``pinId``); ``verify`` asks whether a PIN
matches that reference. The service layer keeps all state and rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.checks import CheckMessage

#: pinError values Infobip documents; anything else is still a failure.
WRONG_PIN = "WRONG_PIN"
#: Delivery channels.
SMS = "sms"
VOICE = "voice"
TTL_EXPIRED = "TTL_EXPIRED"
NO_MORE_PIN_ATTEMPTS = "NO_MORE_PIN_ATTEMPTS"


@dataclass(frozen=True)
class SendResult:
    """A PIN the provider created.

    ``delivered`` is False when the provider accepted the request but says it
    did not send the message (for example an unreachable number).
    """

    pin_id: str
    delivered: bool = True

    def __repr__(self) -> str:  # the pinId never reaches a log through repr()
        return f"SendResult(pin_id=<redacted>, delivered={self.delivered})"


@dataclass(frozen=True)
class VerifyResult:
    """The provider's answer to one verification."""

    verified: bool
    pin_error: str | None = None
    attempts_remaining: int | None = None


class BaseProvider:
    """Base class of every provider.

    Subclasses must implement :meth:`send`, :meth:`verify` and :meth:`resend` and set
    ``provider_name``. They may override :meth:`check_options` to validate their
    constructor options in ``manage.py check``.
    """

    provider_name: ClassVar[str] = "base"
    #: True for providers that deliver nothing real (refused with DEBUG off).
    is_development_only: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def send(self, phone: str, *, channel: str = SMS) -> SendResult:
        """Create a PIN for ``phone`` (E.164) and deliver it by ``channel`` (``sms`` or ``voice``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement send()")

    def verify(self, pin_id: str, pin: str) -> VerifyResult:
        """Check ``pin`` against the PIN identified by ``pin_id``."""
        raise NotImplementedError(f"{type(self).__name__} must implement verify()")

    def resend(self, pin_id: str, *, channel: str = SMS) -> SendResult:
        """Deliver the PIN identified by ``pin_id`` again, by ``channel``: same PIN, same reference."""
        raise NotImplementedError(f"{type(self).__name__} must implement resend()")

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> list[CheckMessage]:
        """Return system-check messages about ``options``; none by default."""
        return []
