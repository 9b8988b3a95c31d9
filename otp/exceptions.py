"""The app's exception tree, and what a client is told about each error.

Services raise these; the API layer (:func:`otp.api.responses.otp_exception_handler`)
answers each with the class's ``http_status``, ``code`` and public message
(:meth:`HttpAnswer.public_message`), never the exception's own text, except
for malformed input, whose message says what to fix. Nothing here imports
DRF: the services stay free of it. Configuration errors subclass
``ImproperlyConfigured`` and stay outside ``OtpError`` so that nothing
catches them by accident.

Two exceptions live where they are used, as control flow inside the limits:
``otp.limits.phone_state.PhoneStateChanged`` (a parallel send changed the phone's row; the
service reads it again and never lets it out) and ``otp.limits.counters.VelocityTripped``
(a ``RateLimited`` that carries the limits' counter so that the block is stored;
a client sees its base class's answer). The operator's tools keep theirs, as
no request meets them: ``otp.providers.provisioning.ProvisioningError`` (the provisioning
commands), ``otp.providers.infobip.InvalidBaseUrl`` (the options' check) and
the emulator's own.
"""

from __future__ import annotations

from typing import ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# One fixed, translated message per kind of answer: a client learns nothing
# about which limit, check or provider fault it was.
INVALID_OTP = _("Invalid or expired OTP.")
SEND_FAILED = _("Unable to send a code to this number.")
UNAVAILABLE = _("The verification service is temporarily unavailable. Please try again later.")
RATE_LIMITED = _("Too many requests. Please try again later.")
REQUEST_TOO_LARGE = _("Request body is too large.")
SERVER_ERROR = _("Internal server error.")
# Coarse on purpose: a client learns "later", not the provider's exact window.
DEFAULT_RETRY_AFTER_SECONDS = 30


class HttpAnswer:
    """The answer a client gets for an exception: status, ``code``, message and ``Retry-After``.

    ``http_status`` None means the exception has no answer of its own: if it
    reaches a view it is a bug, answered 500 and logged with its traceback.
    """

    http_status: ClassVar[int | None] = None
    #: Stable machine-readable code, shown to clients beside ``error``.
    code: str = "server_error"
    #: The fixed, translated text of ``error``.
    message: ClassVar[Promise | str] = SERVER_ERROR

    def public_message(self) -> str:
        """The ``error`` text of the answer."""
        return str(self.message)  # str(): a lazy translation, in the request's language

    def retry_after_seconds(self) -> int | None:
        """The answer's ``Retry-After`` in seconds; None sends no header."""
        return None


class OtpError(HttpAnswer, Exception):
    """Base class of every error the app raises at run time."""

    code = "otp_error"


class InvalidInput(OtpError):
    """The caller's input is malformed (a 400); its message says what to fix."""

    http_status = 400
    code = "invalid_request"

    def public_message(self) -> str:
        return str(self)


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


class ChallengeFailed(InvalidInput):
    """The send's CAPTCHA or attestation token is missing or was refused (a 400)."""

    code = "challenge_failed"


class RequestTooLarge(OtpError):
    """The request body is larger than ``OTP['MAX_REQUEST_BYTES']`` (a 413)."""

    http_status = 413
    code = "payload_too_large"
    message = REQUEST_TOO_LARGE


class RateLimited(OtpError):
    """A limit was hit (a 429). ``reason`` is for the log only, never the client."""

    http_status = 429
    code = "rate_limited"
    message = RATE_LIMITED

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after

    def retry_after_seconds(self) -> int | None:
        return self.retry_after


class BudgetExhausted(OtpError):
    """The site-wide send budget is spent: fail closed (a 503)."""

    http_status = 503
    code = "temporarily_unavailable"
    message = UNAVAILABLE

    def __init__(self, reason: str, *, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after

    def retry_after_seconds(self) -> int | None:
        return self.retry_after


class LimiterUnavailable(OtpError):
    """The shared cache behind the IP limits failed: fail closed (a 503)."""

    http_status = 503
    code = "temporarily_unavailable"
    message = UNAVAILABLE

    def retry_after_seconds(self) -> int | None:
        return DEFAULT_RETRY_AFTER_SECONDS


class DatabaseUnavailable(OtpError):
    """The database is down, failing over, or a lock wait timed out: fail closed (a 503)."""

    http_status = 503
    code = "temporarily_unavailable"
    message = UNAVAILABLE

    def retry_after_seconds(self) -> int | None:
        return DEFAULT_RETRY_AFTER_SECONDS


class VerificationFailed(OtpError):
    """The PIN is wrong, expired, used, superseded, unknown or out of attempts (a 401).

    Deliberately one class: clients must not learn which of these it was.
    """

    http_status = 401
    code = "invalid_or_expired"
    message = INVALID_OTP


class SendRejected(OtpError):
    """The provider took the request but did not deliver the SMS (a 400)."""

    http_status = 400
    code = "send_failed"
    message = SEND_FAILED


class InvalidToken(OtpError):
    """A verificationToken is malformed, forged, expired, already used or for another purpose.

    It has no answer of its own: :class:`otp.api.permissions.PhoneVerified` turns
    it into DRF's 403, and a site's view that reads tokens decides its own.
    """


class ProviderError(OtpError):
    """The provider could not do what was asked (a 503).

    ``breaks_circuit``: the answer says the provider is broken or unreachable
    for everyone, so it counts toward the circuit breaker. Answers about one
    request, number or PIN (and throttling) never do: otherwise one client
    could open the breaker for the whole site.

    ``nothing_sent``: the provider certainly delivered nothing (it refused
    the request with its own error answer, or the request never left), so a
    send is not counted against the phone's cooldown, daily cap or the site's
    budget. When the outcome is unknown (a timeout, a reset after the request
    was written, a proxy's 502) it stays False and the send counts.

    ``status_code`` is the provider's HTTP status, not the client's.
    """

    http_status = 503
    code = "provider_unavailable"
    message = UNAVAILABLE
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
    """The provider answered 429: throttling (perhaps of one number), not breakage.

    On a send it stays a 503 (the site cannot send now); the verify service
    turns it into :class:`RateLimited`, as the provider checked no PIN and the
    client should only wait (see ``otp.services``).
    """

    breaks_circuit = False

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message, status_code=429, nothing_sent=True)
        self.retry_after = retry_after

    def retry_after_seconds(self) -> int | None:
        # Never sooner than the provider asked, and never a precise window.
        return max(self.retry_after or 0, DEFAULT_RETRY_AFTER_SECONDS)


class PinNotFound(ProviderError):
    """The provider no longer knows the PIN (404 on verify): it is gone."""

    breaks_circuit = False


class OtpConfigurationError(HttpAnswer, ImproperlyConfigured):
    """The app's settings are wrong; raised where a system check cannot help (a 503, logged)."""

    http_status = 503
    code = "provider_unavailable"
    message = UNAVAILABLE
