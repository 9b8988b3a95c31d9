"""Development provider: "delivers" the SMS by logging its text to the console.

It needs no account and no network, and is refused while ``DEBUG`` is off
(system check ``otp.E002``): its log lines carry PINs by design.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from otp.providers.base import SMS, VOICE
from otp.providers.simulated import SimulatedProvider
from otp.redaction import mask_phone

logger = logging.getLogger("otp.development_sms")


class DevelopmentProvider(SimulatedProvider):
    """Logs each SMS at WARNING so it shows with Django's default console logging."""

    provider_name: ClassVar[str] = "development"
    is_development_only: ClassVar[bool] = True

    def deliver(self, *, phone: str, pin: str, pin_id: str, text: str, channel: str = SMS) -> None:
        label = "voice call" if channel == VOICE else "SMS"
        logger.warning("[development %s to %s] %s", label, mask_phone(phone, visible=4), text)
