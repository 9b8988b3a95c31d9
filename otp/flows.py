"""Sending and verifying for an HTTP request: the rules that belong to the request, not the phone.

The per-IP limits, the send challenge and the verification token depend on
who is asking, so they sit here, between the views and :mod:`otp.services`.
Every view that sends or verifies for a client (the JSON API in
:mod:`otp.api.views`, the HTML pages in :mod:`otp.web.views`) calls these
functions, so no kind of view can skip a rule, and the IP limits count every
kind of request in the same buckets.

Each function takes the request (a Django ``HttpRequest``, or DRF's
``Request``, which wraps one) and input already validated by the view's
serializer or form; bad input is refused before anything here counts it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.http import HttpRequest

from otp import events, services, tokens
from otp.exceptions import DatabaseUnavailable
from otp.limits import challenge, clock, phone_state
from otp.limits import ip as iplimits
from otp.limits.client_ip import client_ip
from otp.models import OtpAttempt
from otp.providers.base import SMS


def begin_request(request: HttpRequest) -> str:
    """Tie the security events of ``request`` to its id and its client IP; returns the id.

    :raises InvalidForwardedFor: ``X-Forwarded-For`` lacks the entry the trusted proxies add.
    """
    request_id = events.begin_request(request.META.get("HTTP_X_REQUEST_ID"), request.META.get("REMOTE_ADDR", ""))
    events.set_client_ip(client_ip(request))
    return request_id


def send_for_request(
    request: HttpRequest,
    phone: str,
    *,
    purpose: str | None = None,
    channel: str = SMS,
    challenge_token: str | None = None,
    resend: bool = False,
) -> OtpAttempt:
    """Send a code to ``phone`` (or with ``resend``, deliver the one in flight again) for ``request``.

    The request counts against its IP's send bucket (sends and resends share
    it), then the configured challenge verifier must accept
    ``challenge_token``; only then does :func:`otp.services.send_code` (or
    :func:`~otp.services.resend_code`) apply the phone's own limits. The
    attempt records the request's authenticated user, if any.

    :raises RateLimited: the IP's send rate, or a limit of the service (429).
    :raises LimiterUnavailable: the limits' cache cannot count (503).
    :raises InvalidForwardedFor, ChallengeFailed: refused before any SMS (400).
    :raises: whatever :func:`otp.services.send_code` raises.
    """
    iplimits.check_ip_limit(request, iplimits.SEND, phone=phone)
    # After the IP limit: a verifier may call an outside service.
    challenge.check_challenge(request, challenge_token, phone)
    deliver = services.resend_code if resend else services.send_code
    return deliver(phone, user=getattr(request, "user", None), purpose=purpose, channel=channel)


@dataclass(frozen=True)
class Verification:
    """A successful verify: the verified ``attempt`` and the signed ``token`` that proves it."""

    attempt: OtpAttempt
    #: What ``POST /verify-otp`` answers as ``verificationToken`` (:func:`otp.tokens.make_token`).
    token: str


def verify_for_request(request: HttpRequest, phone: str, pin: str, *, purpose: str | None = None) -> Verification:
    """Verify ``pin`` for ``phone`` for ``request``, after the IP's verify limit.

    The failure timing of :func:`otp.services.verify_code` applies as is.

    :raises RateLimited: the IP's verify rate, or the phone is locked out (429).
    :raises VerificationFailed: wrong, expired, used, superseded, unknown or exhausted (401).
    :raises: whatever :func:`otp.services.verify_code` raises.
    """
    iplimits.check_ip_limit(request, iplimits.VERIFY, phone=phone)
    attempt = services.verify_code(phone, pin, purpose=purpose)
    return Verification(attempt=attempt, token=tokens.make_token(attempt.phone, attempt.purpose))


def seconds_until_send(phone: str) -> int:
    """Seconds before ``phone`` may get another code (0: now), rounded up as a refused send tells them.

    A read of the phone's own limits (cooldown, daily cap, lockout, a hold
    while the provider throttles it): what a page shows beside its resend
    button. The send itself still applies every rule.
    """
    return phone_state.seconds_until_send(phone, clock.now_seconds())


def database_unavailable(error: Exception) -> DatabaseUnavailable:
    """The answer to a database failure during a request (a 503), with its event logged.

    The database is down, failing over, or a lock wait timed out; the event
    names the driver's error, never its message (it may hold a host name).
    """
    events.log_event(events.DATABASE_ERROR, level=logging.ERROR, error=type(error.__cause__ or error).__name__)
    return DatabaseUnavailable("the database is unavailable")
