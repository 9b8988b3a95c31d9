"""In-memory test provider with an inspectable outbox, like ``django.core.mail.outbox``.

Use it in tests of a site that uses the app::

    OTP = {"PROVIDER": "otp.providers.locmem.LocmemProvider"}

    from otp.providers import locmem
    locmem.outbox[-1].pin    # the PIN the "SMS" carried

``locmem.fail_next_send(exc)`` makes the next send raise, to test error paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from otp.providers.base import SMS, SendResult
from otp.providers.simulated import SimulatedProvider


@dataclass(frozen=True)
class SentMessage:
    """One message the locmem provider "delivered"."""

    phone: str
    pin: str
    pin_id: str
    text: str
    channel: str = SMS


#: Every message sent since the last :func:`reset`, oldest first.
outbox: list[SentMessage] = []
_send_failures: list[Exception] = []


def reset() -> None:
    """Empty the outbox, the stored PINs and any queued failures."""
    outbox.clear()
    _send_failures.clear()
    LocmemProvider.forget_all()


def fail_next_send(error: Exception) -> None:
    """Make the next ``send`` raise ``error`` instead of delivering."""
    _send_failures.append(error)


class LocmemProvider(SimulatedProvider):
    """Keeps messages in :data:`outbox` instead of sending them."""

    provider_name: ClassVar[str] = "locmem"

    def send(self, phone: str, *, channel: str = SMS) -> SendResult:
        if _send_failures:
            raise _send_failures.pop(0)
        return super().send(phone, channel=channel)

    def deliver(self, *, phone: str, pin: str, pin_id: str, text: str, channel: str = SMS) -> None:
        outbox.append(SentMessage(phone=phone, pin=pin, pin_id=pin_id, text=text, channel=channel))
