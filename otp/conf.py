"""The app's settings: one namespaced ``OTP`` dict, read lazily on every access.

Every default lives here. Reading ``settings.OTP`` on each access (never at
import) keeps ``override_settings`` and pytest-django's ``settings`` fixture
working without reload hooks.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

#: Hard ceiling for a PIN's life (NIST SP 800-63B: at most 10 minutes).
MAX_CODE_TTL_SECONDS = 600

DEFAULTS: dict[str, Any] = {
    # Dotted path of the provider class; None means "not configured".
    "PROVIDER": None,
    # Keyword arguments for the provider's constructor (API key, IDs, timeouts).
    "PROVIDER_OPTIONS": {},
    # Number of ASCII digits in a PIN.
    "PIN_LENGTH": 6,
    # How long a PIN can be verified, in seconds (at most 600).
    "CODE_TTL_SECONDS": 300,
    # Verify attempts allowed per PIN before it is dead.
    "MAX_VERIFY_ATTEMPTS": 5,
    # ISO 3166 region for numbers given without a leading "+"; None requires "+".
    "DEFAULT_REGION": None,
    # Largest request body the OTP endpoints read, in bytes.
    "MAX_REQUEST_BYTES": 1024,
    # Days an expired attempt is kept before cleanup deletes it.
    "RETENTION_DAYS": 30,
}


class OtpSettings:
    """Typed accessors for ``settings.OTP``; unknown keys fall back to defaults."""

    def _get(self, name: str) -> Any:
        user_settings = getattr(settings, "OTP", None) or {}
        return user_settings.get(name, DEFAULTS[name])

    @property
    def PROVIDER(self) -> str | None:
        """Dotted path to the provider class."""
        return self._get("PROVIDER")

    @property
    def PROVIDER_OPTIONS(self) -> dict[str, Any]:
        """Constructor keyword arguments for the provider."""
        return dict(self._get("PROVIDER_OPTIONS") or {})

    @property
    def PIN_LENGTH(self) -> int:
        """Number of digits in a PIN."""
        return self._get("PIN_LENGTH")

    @property
    def CODE_TTL_SECONDS(self) -> int:
        """Seconds a PIN stays valid."""
        return self._get("CODE_TTL_SECONDS")

    @property
    def MAX_VERIFY_ATTEMPTS(self) -> int:
        """Verify attempts allowed per PIN."""
        return self._get("MAX_VERIFY_ATTEMPTS")

    @property
    def DEFAULT_REGION(self) -> str | None:
        """Region assumed for numbers without a leading ``+``."""
        return self._get("DEFAULT_REGION")

    @property
    def MAX_REQUEST_BYTES(self) -> int:
        """Largest request body the endpoints accept."""
        return self._get("MAX_REQUEST_BYTES")

    @property
    def RETENTION_DAYS(self) -> int:
        """Days expired attempts are kept."""
        return self._get("RETENTION_DAYS")


otp_settings = OtpSettings()
