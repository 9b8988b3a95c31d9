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
    # -- Abuse resistance. A limit set to None is off. --------------------------
    # Per client IP (django-ratelimit, shared cache): "count/period" strings.
    "IP_SEND_RATE": "5/15m",
    "IP_VERIFY_RATE": "10/5m",
    # Reverse proxies in front of the site that append to X-Forwarded-For;
    # 0 means the client IP is REMOTE_ADDR and the header is ignored; with N,
    # a request without the N-th entry from the right is refused (400).
    "TRUSTED_PROXY_COUNT": 0,
    # Per phone: the wait after a send doubles with each send of the last 24 h.
    "RESEND_COOLDOWN_SECONDS": 60,
    "RESEND_COOLDOWN_MAX_SECONDS": 900,
    "MAX_SENDS_PER_PHONE_PER_DAY": 5,
    # Per phone, across PINs: failed verifies in a row before a backoff that
    # doubles with each further failure; a success resets the count.
    "MAX_FAILURES_PER_PHONE": 20,
    "FAILURE_BACKOFF_SECONDS": 30,
    "FAILURE_BACKOFF_MAX_SECONDS": 3600,
    # Per prefix (the number minus its last PREFIX_STRIP_DIGITS digits) and per
    # country: sends per hour before the prefix or country is blocked.
    "PREFIX_STRIP_DIGITS": 4,
    "MAX_SENDS_PER_PREFIX_PER_HOUR": 20,
    "PREFIX_BLOCK_SECONDS": 12 * 3600,
    "MAX_SENDS_PER_COUNTRY_PER_HOUR": 500,
    "COUNTRY_BLOCK_SECONDS": 3600,
    # Global send budget; when spent, sends fail closed with 503.
    "MAX_SENDS_PER_HOUR": 1000,
    "MAX_SENDS_PER_DAY": 10000,
    # Percentages of the global budget at which one alert is logged per window.
    "BUDGET_ALERT_PERCENTS": (50, 80, 100),
    # Destination policy: ISO regions allowed (None: all) and number types
    # (names of phonenumbers.PhoneNumberType) allowed.
    "ALLOWED_REGIONS": None,
    "ALLOWED_NUMBER_TYPES": ("MOBILE", "FIXED_LINE_OR_MOBILE"),
    # Every failed verify takes at least this long, so that its timing does not
    # reveal whether the provider was asked (a pending attempt exists) or not.
    "VERIFY_FAILURE_MIN_SECONDS": 0.25,
    # A failed verify that did not ask the provider also waits for the median
    # time recent verifies took to get the provider's answer, but at most this
    # long (0 turns that off; the minimum above still applies).
    "VERIFY_FAILURE_MAX_SECONDS": 1.0,
    # Optional bot-friction step on send and resend: dotted path of a callable
    # (request, token) -> bool that checks a CAPTCHA or attestation token sent as
    # "challengeToken". None: no challenge.
    "SEND_CHALLENGE_VERIFIER": None,
    # Conversion monitoring (otp_conversion_report): groups with at least
    # CONVERSION_MIN_SENDS sends in the window and fewer than this share verified.
    "CONVERSION_ALERT_THRESHOLD": 0.2,
    "CONVERSION_MIN_SENDS": 50,
    # -- Integration ----------------------------------------------------------
    # Purposes a code may be sent for (e.g. "signup", "login"); None allows any
    # short slug. A code sent for one purpose never verifies another.
    "PURPOSES": None,
    "DEFAULT_PURPOSE": "default",
    # Delivery channels clients may ask for.
    "CHANNELS": ("sms", "voice"),
    # Life of the signed verificationToken a successful verify returns, in
    # seconds (a positive number; None would never expire it).
    "VERIFICATION_TOKEN_MAX_AGE_SECONDS": 600,
    # A verificationToken is accepted once (PhoneVerified, read_token(...,
    # consume=True)); False lets it be replayed until it expires.
    "VERIFICATION_TOKEN_SINGLE_USE": True,
    # -- Resilience -----------------------------------------------------------
    # Consecutive provider failures that open the circuit, and how long it
    # stays open before one probe is let through. Its state lives in this cache
    # alias, shared by every process when it is Redis.
    "CIRCUIT_FAILURES": 5,
    "CIRCUIT_OPEN_SECONDS": 30,
    "CIRCUIT_CACHE": "default",
    # Provider calls one process runs at once, and how long a request waits
    # for a slot before it answers 503 (keeps slow upstreams from taking every
    # worker thread).
    "PROVIDER_MAX_CONCURRENCY": 48,
    "PROVIDER_QUEUE_TIMEOUT_SECONDS": 0.5,
    # Distinct numbers the provider throttles (429) within a minute before one
    # alert is logged: 429s spread over many numbers look like a throttle of
    # the whole application, not one number's limit. None: no alert.
    "PROVIDER_THROTTLE_ALERT_NUMBERS": 10,
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

    def __getattr__(self, name: str) -> Any:
        # The limit settings are plain values read the same way; a typo still
        # fails loudly because only keys of DEFAULTS are served.
        if name in DEFAULTS:
            return self._get(name)
        raise AttributeError(f"Unknown OTP setting {name!r}")


otp_settings = OtpSettings()
