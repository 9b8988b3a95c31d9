"""The app's settings: one namespaced ``OTP`` dict, read lazily on every access.

Every default lives here. Reading ``settings.OTP`` on each access (never at
import) keeps ``override_settings`` and pytest-django's ``settings`` fixture
working without reload hooks.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
    # The host users' browsers show the verification page on (e.g.
    # "example.com"): SMS then end with the line "@example.com #123456", which
    # browsers offer to autofill on that host only. None: plain SMS.
    "WEBOTP_DOMAIN": None,
    # Life of the signed verificationToken a successful verify returns, in
    # seconds (a positive number; None would never expire it).
    "VERIFICATION_TOKEN_MAX_AGE_SECONDS": 600,
    # A verificationToken is accepted once (PhoneVerified, read_token(...,
    # consume=True)); False lets it be replayed until it expires.
    "VERIFICATION_TOKEN_SINGLE_USE": True,
    # -- HTML pages (otp.web) -------------------------------------------------
    # The template the pages extend; it must have a {% block content %}.
    "WEB_BASE_TEMPLATE": "otp/web/base.html",
    # Where a verified visitor goes when the start page had no safe "next":
    # a URL, a path or a URL name (django.shortcuts.resolve_url).
    "WEB_SUCCESS_URL": "otp_web:done",
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
    """Typed accessors for ``settings.OTP``, one per key of ``DEFAULTS``; a missing key reads its default."""

    def _get(self, name: str) -> Any:
        user_settings = getattr(settings, "OTP", None) or {}
        return user_settings.get(name, DEFAULTS[name])

    @property
    def PROVIDER(self) -> str | None:
        """Dotted path of the provider class; None: not configured."""
        return self._get("PROVIDER")

    @property
    def PROVIDER_OPTIONS(self) -> dict[str, Any]:
        """Keyword arguments for the provider's constructor."""
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
        """Region assumed for numbers without a leading ``+``; None requires it."""
        return self._get("DEFAULT_REGION")

    @property
    def MAX_REQUEST_BYTES(self) -> int:
        """Largest request body the endpoints accept."""
        return self._get("MAX_REQUEST_BYTES")

    @property
    def RETENTION_DAYS(self) -> int:
        """Days expired attempts are kept."""
        return self._get("RETENTION_DAYS")

    @property
    def IP_SEND_RATE(self) -> str | None:
        """Sends per client IP, as ``count/period``; None: no limit."""
        return self._get("IP_SEND_RATE")

    @property
    def IP_VERIFY_RATE(self) -> str | None:
        """Verifies per client IP, as ``count/period``; None: no limit."""
        return self._get("IP_VERIFY_RATE")

    @property
    def TRUSTED_PROXY_COUNT(self) -> int:
        """Reverse proxies that append to ``X-Forwarded-For``; 0: use ``REMOTE_ADDR``."""
        return self._get("TRUSTED_PROXY_COUNT")

    @property
    def RESEND_COOLDOWN_SECONDS(self) -> int:
        """A phone's first wait between sends; it doubles with each send of the day."""
        return self._get("RESEND_COOLDOWN_SECONDS")

    @property
    def RESEND_COOLDOWN_MAX_SECONDS(self) -> int:
        """The longest wait between a phone's sends."""
        return self._get("RESEND_COOLDOWN_MAX_SECONDS")

    @property
    def MAX_SENDS_PER_PHONE_PER_DAY(self) -> int | None:
        """Sends per phone in 24 hours; None: no cap."""
        return self._get("MAX_SENDS_PER_PHONE_PER_DAY")

    @property
    def MAX_FAILURES_PER_PHONE(self) -> int | None:
        """Failed verifies in a row, across PINs, before a phone backs off; None: never."""
        return self._get("MAX_FAILURES_PER_PHONE")

    @property
    def FAILURE_BACKOFF_SECONDS(self) -> int:
        """A phone's first backoff after too many failures; it doubles with each more."""
        return self._get("FAILURE_BACKOFF_SECONDS")

    @property
    def FAILURE_BACKOFF_MAX_SECONDS(self) -> int:
        """The longest backoff after failed verifies."""
        return self._get("FAILURE_BACKOFF_MAX_SECONDS")

    @property
    def PREFIX_STRIP_DIGITS(self) -> int:
        """Trailing digits dropped from a number to form its prefix."""
        return self._get("PREFIX_STRIP_DIGITS")

    @property
    def MAX_SENDS_PER_PREFIX_PER_HOUR(self) -> int | None:
        """Sends per prefix per hour before it is blocked; None: no limit."""
        return self._get("MAX_SENDS_PER_PREFIX_PER_HOUR")

    @property
    def PREFIX_BLOCK_SECONDS(self) -> int:
        """How long a prefix over its limit stays blocked."""
        return self._get("PREFIX_BLOCK_SECONDS")

    @property
    def MAX_SENDS_PER_COUNTRY_PER_HOUR(self) -> int | None:
        """Sends per country per hour before it is blocked; None: no limit."""
        return self._get("MAX_SENDS_PER_COUNTRY_PER_HOUR")

    @property
    def COUNTRY_BLOCK_SECONDS(self) -> int:
        """How long a country over its limit stays blocked."""
        return self._get("COUNTRY_BLOCK_SECONDS")

    @property
    def MAX_SENDS_PER_HOUR(self) -> int | None:
        """The site's send budget per hour; None: no budget."""
        return self._get("MAX_SENDS_PER_HOUR")

    @property
    def MAX_SENDS_PER_DAY(self) -> int | None:
        """The site's send budget per day; None: no budget."""
        return self._get("MAX_SENDS_PER_DAY")

    @property
    def BUDGET_ALERT_PERCENTS(self) -> Sequence[int] | None:
        """Shares of a send budget, in percent, at which one alert is logged per window."""
        return self._get("BUDGET_ALERT_PERCENTS")

    @property
    def ALLOWED_REGIONS(self) -> Collection[str] | None:
        """ISO regions that codes may be sent to; None: every region."""
        return self._get("ALLOWED_REGIONS")

    @property
    def ALLOWED_NUMBER_TYPES(self) -> Collection[str] | None:
        """Names of ``phonenumbers.PhoneNumberType`` that may receive codes."""
        return self._get("ALLOWED_NUMBER_TYPES")

    @property
    def VERIFY_FAILURE_MIN_SECONDS(self) -> float:
        """The least time a failed verify takes to answer."""
        return self._get("VERIFY_FAILURE_MIN_SECONDS")

    @property
    def VERIFY_FAILURE_MAX_SECONDS(self) -> float:
        """The most a failed verify that did not ask the provider waits for the median."""
        return self._get("VERIFY_FAILURE_MAX_SECONDS")

    @property
    def SEND_CHALLENGE_VERIFIER(self) -> str | None:
        """Dotted path of ``verify(request, token) -> bool`` for ``challengeToken``; None: none."""
        return self._get("SEND_CHALLENGE_VERIFIER")

    @property
    def CONVERSION_ALERT_THRESHOLD(self) -> float:
        """Share of sends verified below which a conversion group is reported."""
        return self._get("CONVERSION_ALERT_THRESHOLD")

    @property
    def CONVERSION_MIN_SENDS(self) -> int:
        """Sends a conversion group needs before it is judged."""
        return self._get("CONVERSION_MIN_SENDS")

    @property
    def PURPOSES(self) -> Collection[str] | None:
        """Purposes a code may be sent for; None: any short slug."""
        return self._get("PURPOSES")

    @property
    def DEFAULT_PURPOSE(self) -> str:
        """The purpose of a request that names none."""
        return self._get("DEFAULT_PURPOSE")

    @property
    def CHANNELS(self) -> Collection[str]:
        """Delivery channels clients may ask for."""
        return self._get("CHANNELS")

    @property
    def WEBOTP_DOMAIN(self) -> str | None:
        """The host origin-bound SMS name in their last line; None (or empty): none."""
        return self._get("WEBOTP_DOMAIN") or None

    @property
    def VERIFICATION_TOKEN_MAX_AGE_SECONDS(self) -> int:
        """Life of a ``verificationToken`` in seconds."""
        return self._get("VERIFICATION_TOKEN_MAX_AGE_SECONDS")

    @property
    def VERIFICATION_TOKEN_SINGLE_USE(self) -> bool:
        """Whether a ``verificationToken`` is accepted only once."""
        return self._get("VERIFICATION_TOKEN_SINGLE_USE")

    @property
    def WEB_BASE_TEMPLATE(self) -> str:
        """The template the HTML pages extend (it has a ``content`` block)."""
        return self._get("WEB_BASE_TEMPLATE")

    @property
    def WEB_SUCCESS_URL(self) -> str:
        """URL, path or URL name a verified visitor goes to without a safe ``next``."""
        return self._get("WEB_SUCCESS_URL")

    @property
    def CIRCUIT_FAILURES(self) -> int | None:
        """Provider failures in a row that open the circuit; 0 or None: no breaker."""
        return self._get("CIRCUIT_FAILURES")

    @property
    def CIRCUIT_OPEN_SECONDS(self) -> int:
        """How long the open circuit waits before one probe."""
        return self._get("CIRCUIT_OPEN_SECONDS")

    @property
    def CIRCUIT_CACHE(self) -> str:
        """The cache alias that holds the circuit's state."""
        return self._get("CIRCUIT_CACHE")

    @property
    def PROVIDER_MAX_CONCURRENCY(self) -> int | None:
        """Provider calls one process runs at once; 0 or None: no bound."""
        return self._get("PROVIDER_MAX_CONCURRENCY")

    @property
    def PROVIDER_QUEUE_TIMEOUT_SECONDS(self) -> float | None:
        """Seconds a request waits for a provider slot before it answers 503; None: no bound."""
        return self._get("PROVIDER_QUEUE_TIMEOUT_SECONDS")

    @property
    def PROVIDER_THROTTLE_ALERT_NUMBERS(self) -> int | None:
        """Distinct numbers throttled within a minute before one alert; None: no alert."""
        return self._get("PROVIDER_THROTTLE_ALERT_NUMBERS")


otp_settings = OtpSettings()
