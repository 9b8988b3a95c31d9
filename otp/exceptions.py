"""The app's exception tree.

Services raise these; the API layer maps them to HTTP answers. Configuration
errors subclass ``ImproperlyConfigured`` and stay outside ``OtpError`` so that
nothing catches them by accident.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class OtpError(Exception):
    """Base class of every error the app raises at run time."""

    #: Stable machine-readable code, shown to clients beside ``error``.
    code = "otp_error"


class InvalidInput(OtpError):
    """The caller's input is malformed (a 400)."""

    code = "invalid_request"


class InvalidPhoneNumber(InvalidInput):
    """The phone number cannot be parsed or is not a valid number."""

    code = "invalid_phone_number"


class InvalidForwardedFor(InvalidInput):
    """``X-Forwarded-For`` lacks the entry the trusted proxies should have added (a 400)."""

    code = "invalid_forwarded_for"


class DestinationNotAllowed(InvalidInput):
    """The number's country or type may not receive codes (a 400)."""

    code = "unsupported_destination"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RateLimited(OtpError):
    """A limit was hit (a 429). ``reason`` is for the log only, never the client."""

    code = "rate_limited"

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class BudgetExhausted(OtpError):
    """The site-wide send budget is spent: fail closed (a 503)."""

    code = "send_budget_exhausted"

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ChallengeFailed(InvalidInput):
    """The send's CAPTCHA or attestation token is missing or was refused (a 400)."""

    code = "challenge_failed"


class LimiterUnavailable(OtpError):
    """The shared cache behind the IP limits failed: fail closed (a 503)."""

    code = "temporarily_unavailable"


class VerificationFailed(OtpError):
    """The PIN is wrong, expired, used, superseded, unknown or out of attempts.

    Deliberately one class: clients must not learn which of these it was.
    """

    code = "invalid_or_expired"


class SendRejected(OtpError):
    """The provider took the request but did not deliver the SMS."""

    code = "send_failed"


class ProviderError(OtpError):
    """The provider could not do what was asked (maps to 503).

    ``breaks_circuit``: the answer says the provider is broken or unreachable
    for everyone, so it counts toward the circuit breaker. Answers about one
    request, number or PIN (and throttling) never do: otherwise one client
    could open the breaker for the whole site.

    ``nothing_sent``: the provider certainly delivered nothing (it refused
    the request with its own error answer, or the request never left), so a
    send is not counted against the phone's cooldown, daily cap or the site's
    budget. When the outcome is unknown (a timeout, a reset after the request
    was written, a proxy's 502) it stays False and the send counts.
    """

    code = "provider_unavailable"
    breaks_circuit = True

    def __init__(self, message: str, *, status_code: int | None = None, nothing_sent: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.nothing_sent = nothing_sent


class ProviderUnavailable(ProviderError):
    """Timeouts, connection errors, 5xx, redirects, malformed or unexpected bodies."""


class ProviderMisconfigured(ProviderError):
    """The provider refused our credentials (401, 403), or the client cannot send with them."""


class ProviderRejected(ProviderError):
    """The provider refused this one request (400 or another 4xx): nothing about its health."""

    breaks_circuit = False


class ProviderRateLimited(ProviderError):
    """The provider answered 429: throttling (perhaps of one number), not breakage."""

    breaks_circuit = False

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message, status_code=429, nothing_sent=True)
        self.retry_after = retry_after


class PinNotFound(ProviderError):
    """The provider no longer knows the PIN (404 on verify): it is gone."""

    breaks_circuit = False


class OtpConfigurationError(ImproperlyConfigured):
    """The app's settings are wrong; raised where a system check cannot help."""
