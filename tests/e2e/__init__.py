"""End-to-end helpers: the app's Infobip provider against the local emulator.

``emulated_infobip(settings)`` starts the emulator on a free loopback port,
seeds an application that follows the app's own policy, and points
``settings.OTP`` at it; the handle reads back the PINs it "sent".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from otp.conf import otp_settings
from otp.emulator import EmulatorServer, running_emulator
from otp.emulator.formats import parse_duration, parse_limit

API_KEY = "e2e-emulator-key-0123456789"


@dataclass
class EmulatedInfobip:
    server: EmulatorServer
    application_id: str
    message_id: str

    def last_pin(self, phone: str) -> str:
        pin = self.server.emulator.last_pin(phone)
        assert pin is not None, f"the emulator sent no PIN to {phone}"
        return pin.pin


@contextmanager
def emulated_infobip(settings: Any, **limits: str) -> Iterator[EmulatedInfobip]:
    """Run the emulator and configure the app for it; ``limits`` override e.g. verifyPinLimit."""
    config: dict[str, Any] = {
        "pinAttempts": otp_settings.MAX_VERIFY_ATTEMPTS,
        "pinTimeToLive": parse_duration(f"{otp_settings.CODE_TTL_SECONDS}s"),
    }
    config.update({name: parse_limit(value) for name, value in limits.items()})
    with running_emulator(api_key=API_KEY) as server:
        app_id, msg_id = server.emulator.seed(configuration=config, template={"pinLength": otp_settings.PIN_LENGTH})
        settings.OTP = {
            **settings.OTP,
            "PROVIDER": "otp.providers.infobip.InfobipProvider",
            "PROVIDER_OPTIONS": {
                "api_key": API_KEY,
                "base_url": server.base_url,
                "application_id": app_id,
                "message_id": msg_id,
                "connect_timeout": 2,
                "read_timeout": 2,
            },
        }
        yield EmulatedInfobip(server, app_id, msg_id)
