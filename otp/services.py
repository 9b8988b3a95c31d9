"""The service layer: every rule and every transaction of sending and verifying.

Views, management commands, the admin and a site's own code call these
functions; nothing else touches ``OtpAttempt`` state or the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from otp.conf import otp_settings
from otp.exceptions import (
    PinNotFound,
    ProviderError,
    ProviderUnavailable,
    SendRejected,
    VerificationFailed,
)
from otp.models import AttemptStatus, OtpAttempt
from otp.phones import normalize_phone
from otp.pins import validate_pin
from otp.providers import get_provider
from otp.providers.base import NO_MORE_PIN_ATTEMPTS, TTL_EXPIRED
from otp.redaction import mask_phone
from otp.signals import phone_verified

logger = logging.getLogger(__name__)

# Attempts a newer send replaces; SENDING is included so a slow older send that
# finishes last cannot come back to life.
_OPEN_STATUSES = (AttemptStatus.PENDING, AttemptStatus.SENDING)
_CLOSING_PIN_ERRORS = {TTL_EXPIRED: AttemptStatus.EXPIRED, NO_MORE_PIN_ATTEMPTS: AttemptStatus.EXHAUSTED}


def _user_or_none(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def send_code(phone: str, *, user: Any = None) -> OtpAttempt:
    """Ask the provider to send a PIN to ``phone`` and record the attempt.

    The row is written (status ``sending``) and committed *before* the provider
    is called, so no crash can leave an SMS out with no record of it; a row
    stuck in ``sending`` is an SMS that may have gone out and never verifies.
    Only after the provider accepted does the new attempt replace the phone's
    older open attempts, so a failed send never kills a code already delivered.

    :raises InvalidPhoneNumber: ``phone`` is not a valid number.
    :raises SendRejected: the provider did not deliver the SMS.
    :raises ProviderError: the provider is unavailable or misconfigured.
    """
    phone = normalize_phone(phone, otp_settings.DEFAULT_REGION)
    provider = get_provider()
    now = timezone.now()
    attempt = OtpAttempt.objects.create(
        phone=phone,
        status=AttemptStatus.SENDING,
        provider=provider.provider_name,
        user=_user_or_none(user),
        created_at=now,
        expires_at=now + timedelta(seconds=otp_settings.CODE_TTL_SECONDS),
    )
    this = OtpAttempt.objects.filter(pk=attempt.pk)
    try:
        result = provider.send(phone)
    except Exception as err:
        this.update(status=AttemptStatus.FAILED)
        if isinstance(err, ProviderError):
            logger.error("OTP send to %s failed: %s", mask_phone(phone), err)
        raise
    try:
        if not result.delivered:
            this.update(status=AttemptStatus.FAILED, pin_id=result.pin_id)
            logger.warning("OTP send to %s was not delivered by the provider", mask_phone(phone))
            raise SendRejected("the provider did not deliver the message")
        _record_delivery(attempt, result.pin_id)
    except IntegrityError as err:
        # A pinId we already hold: the provider is not behaving; fail closed.
        this.update(status=AttemptStatus.FAILED)
        raise ProviderUnavailable("the provider returned a pinId already in use") from err
    attempt.pin_id = result.pin_id
    attempt.status = AttemptStatus.PENDING
    return attempt


def _record_delivery(attempt: OtpAttempt, pin_id: str) -> None:
    """Store the provider's pinId and make ``attempt`` the phone's only open one."""
    with transaction.atomic():
        # Lock this phone's open rows up to ours in ascending pk order: two
        # sends finishing together then wait for each other instead of deadlocking.
        locked = list(
            OtpAttempt.objects.select_for_update()
            .filter(Q(status__in=_OPEN_STATUSES) | Q(pk=attempt.pk), phone=attempt.phone, pk__lte=attempt.pk)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        # Becomes pending unless a newer send superseded it meanwhile; the
        # pinId is kept either way so the row accounts for the SMS.
        OtpAttempt.objects.filter(pk=attempt.pk).update(
            pin_id=pin_id,
            status=Case(
                When(status=AttemptStatus.SENDING, then=Value(AttemptStatus.PENDING)),
                default=F("status"),
            ),
        )
        older = [pk for pk in locked if pk != attempt.pk]
        if older:
            OtpAttempt.objects.filter(pk__in=older, status__in=_OPEN_STATUSES).update(
                status=AttemptStatus.SUPERSEDED
            )


def verify_code(phone: str, pin: str) -> OtpAttempt:
    """Verify ``pin`` for the newest pending attempt of ``phone``.

    One attempt slot is reserved atomically before the provider is called, so
    parallel guesses never reach the provider more often than
    ``MAX_VERIFY_ATTEMPTS``. Success is a conditional update: it happens once
    per attempt, whatever the provider answers to repeated verifications.

    :returns: the verified attempt.
    :raises InvalidPhoneNumber, InvalidInput: malformed input.
    :raises VerificationFailed: wrong, expired, used, superseded, unknown or exhausted.
    :raises ProviderError: the provider is unavailable or misconfigured.
    """
    phone = normalize_phone(phone, otp_settings.DEFAULT_REGION)
    pin = validate_pin(pin, otp_settings.PIN_LENGTH)
    now = timezone.now()
    attempt = (
        OtpAttempt.objects.filter(phone=phone, status=AttemptStatus.PENDING)
        .only("pk", "phone", "pin_id", "expires_at", "failed_verifies", "user_id")
        .order_by("-pk")
        .first()
    )
    if attempt is None or not attempt.pin_id:
        raise VerificationFailed("no pending attempt")
    pending = OtpAttempt.objects.filter(pk=attempt.pk, status=AttemptStatus.PENDING)
    if attempt.is_expired(now):
        pending.update(status=AttemptStatus.EXPIRED)
        raise VerificationFailed("expired locally")

    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    reserved = pending.filter(failed_verifies__lt=max_attempts, expires_at__gt=now).update(
        failed_verifies=F("failed_verifies") + 1
    )
    if not reserved:
        pending.filter(failed_verifies__gte=max_attempts).update(status=AttemptStatus.EXHAUSTED)
        raise VerificationFailed("no attempt left")

    try:
        result = get_provider().verify(attempt.pin_id, pin)
    except PinNotFound as err:
        pending.update(status=AttemptStatus.EXPIRED)
        raise VerificationFailed("the provider no longer knows the PIN") from err
    except ProviderError as err:
        logger.error("OTP verify for %s failed: %s", mask_phone(phone), err)
        raise

    if result.verified:
        return _mark_verified(attempt)

    closing = _CLOSING_PIN_ERRORS.get(result.pin_error or "")
    if closing is None and (
        result.attempts_remaining == 0 or attempt.failed_verifies + 1 >= max_attempts
    ):
        closing = AttemptStatus.EXHAUSTED
    if closing is not None:
        pending.update(status=closing)
    raise VerificationFailed("the provider did not verify the PIN")


def _mark_verified(attempt: OtpAttempt) -> OtpAttempt:
    verified_at = timezone.now()
    with transaction.atomic():
        won = OtpAttempt.objects.filter(pk=attempt.pk, status=AttemptStatus.PENDING).update(
            status=AttemptStatus.VERIFIED,
            verified_at=verified_at,
            # The reserved slot turned out not to be a failure.
            failed_verifies=F("failed_verifies") - 1,
        )
        if not won:
            raise VerificationFailed("already verified, superseded or closed meanwhile")
        attempt.status = AttemptStatus.VERIFIED
        attempt.verified_at = verified_at
        phone_verified.send(sender=OtpAttempt, attempt=attempt, phone=attempt.phone, user=attempt.user)
    return attempt


def invalidate_attempts(attempt_ids: Iterable[int]) -> int:
    """Close the given attempts if they are still open; returns how many were."""
    return OtpAttempt.objects.filter(pk__in=list(attempt_ids), status__in=_OPEN_STATUSES).update(
        status=AttemptStatus.INVALIDATED
    )
