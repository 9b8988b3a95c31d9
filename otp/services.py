"""The service layer: every rule and every transaction of sending and verifying.

Views, management commands, the admin and a site's own code call these
functions; nothing else touches ``OtpAttempt`` state or the provider.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import partial
from typing import NoReturn, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from otp import attempt_sql, events, signals, verify_timing
from otp.conf import otp_settings
from otp.exceptions import (
    BudgetExhausted,
    DestinationNotAllowed,
    PinNotFound,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    RateLimited,
    SendRejected,
    VerificationFailed,
)
from otp.limits import clock, counters, phone_state
from otp.limits.destinations import check_destination
from otp.models import AttemptStatus, OtpAttempt
from otp.providers import calls as provider_calls
from otp.providers import get_provider
from otp.providers.base import NO_MORE_PIN_ATTEMPTS, SMS, TTL_EXPIRED, SendResult
from otp.providers.calls import call_provider
from otp.validators.phones import normalize_phone
from otp.validators.pins import validate_pin
from otp.validators.purposes import validate_channel, validate_purpose

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Attempts a newer send replaces; SENDING is included so a slow older send that
# finishes last cannot come back to life.
_OPEN_STATUSES = (AttemptStatus.PENDING, AttemptStatus.SENDING)
_CLOSING_PIN_ERRORS = {TTL_EXPIRED: AttemptStatus.EXPIRED, NO_MORE_PIN_ATTEMPTS: AttemptStatus.EXHAUSTED}


#: Who asks for a code: a site's user, an anonymous visitor, or nobody (a script).
User = AbstractBaseUser | AnonymousUser | None
#: Records a send on the phone's state: (state as read, its sends of the last day, now) -> the new row.
Reserve = Callable[[phone_state.PhoneLimits, list[int], int], T]


def _user_id(user: User) -> int | None:
    return user.pk if user is not None and user.is_authenticated else None


def _checked_destination(raw_phone: str, purpose: str) -> tuple[str, str]:
    """Normalise the phone and apply the destination policy; returns (phone, region)."""
    phone = normalize_phone(raw_phone, otp_settings.DEFAULT_REGION)
    try:
        region = check_destination(phone)
    except DestinationNotAllowed as err:
        events.log_event(events.DESTINATION_BLOCKED, phone=phone, reason=err.reason)
        signals.send_blocked.send(sender=OtpAttempt, phone=phone, purpose=purpose, reason=f"destination_{err.reason}")
        raise
    return phone, region


def send_code(phone: str, *, user: User = None, purpose: str | None = None, channel: str = SMS) -> OtpAttempt:
    """Ask the provider to send a PIN to ``phone`` and record the attempt.

    Every limit is checked and the attempt row (status ``sending``) committed
    *before* the provider is called, so no crash can leave an SMS out with no
    record of it; a row stuck in ``sending`` is an SMS that may have gone out
    and never verifies. Only after the provider accepted does the new attempt
    replace the phone's older open attempts, so a failed send never kills a
    code already delivered.

    :raises InvalidPhoneNumber, DestinationNotAllowed: the number is refused (400).
    :raises RateLimited: a per-phone, prefix or country limit (429).
    :raises BudgetExhausted: the site-wide send budget is spent (503).
    :raises SendRejected: the provider did not deliver the SMS.
    :raises ProviderError: the provider is unavailable or misconfigured.
    """
    purpose = validate_purpose(purpose)
    channel = validate_channel(channel)
    phone, region = _checked_destination(phone, purpose)
    events.log_event(events.SEND_REQUESTED, phone=phone, region=region, channel=channel)
    provider = get_provider()
    attempt = OtpAttempt(
        phone=phone,
        provider=provider.provider_name,
        user_id=_user_id(user),
        purpose=purpose,
        channel=channel,
        status=AttemptStatus.SENDING,
        expires_at=timezone.now() + timedelta(seconds=otp_settings.CODE_TTL_SECONDS),
    )
    attempt, counted, sent_at = _within_send_limits(phone, region, purpose, partial(_insert_claimed, attempt))

    try:
        result = call_provider(lambda: provider.send(phone, channel=channel))
    except Exception as err:
        _mark_failed(attempt.pk)
        if isinstance(err, ProviderError):
            _send_failed(phone, "send", err, sent_at, counted)
        raise
    try:
        if not result.delivered:
            OtpAttempt.objects.filter(pk=attempt.pk).update(status=AttemptStatus.FAILED, pin_id=result.pin_id)
            events.log_event(events.SEND_FAILED, phone=phone, level=logging.WARNING, reason="not_delivered")
            raise SendRejected("the provider did not deliver the message")
        _record_delivery(attempt, result.pin_id)
    except IntegrityError as err:
        # A pinId we already hold: the provider is not behaving; fail closed.
        _mark_failed(attempt.pk)
        raise ProviderUnavailable("the provider returned a pinId already in use") from err
    except DatabaseError:
        # The SMS is out but its pinId is not stored: the row stays "sending"
        # (it never verifies) and an operator can reconcile from this record.
        events.log_event(
            events.SEND_ORPHAN, phone=phone, level=logging.ERROR, attempt=attempt.pk, provider=provider.provider_name
        )
        raise
    attempt.pin_id = result.pin_id
    attempt.status = AttemptStatus.PENDING
    events.log_event(events.SEND_ACCEPTED, phone=phone, attempt=attempt.pk)
    _announce_sent(attempt, channel, resend=False)
    return attempt


def _insert_claimed(attempt: OtpAttempt, state: phone_state.PhoneLimits, sends: list[int], now: int) -> OtpAttempt:
    """Insert ``attempt`` and record its send on the phone's state, both or neither."""
    pk = attempt_sql.insert_attempt(attempt, claim=phone_state.send_claim(state, sends, now))
    if pk is None:
        raise phone_state.PhoneStateChanged()
    attempt.pk = pk
    return attempt


def _send_failed(phone: str, operation: str, err: ProviderError, sent_at: int, counted: counters.Counted) -> None:
    """Account for a send or resend the provider did not take.

    A throttled phone waits out the provider's ``Retry-After``. A send the
    provider certainly did not deliver (its own error answer, or never sent)
    is taken off the phone's cooldown and daily cap and the site's budget, so
    the user may try again at once; one whose outcome is unknown stays
    counted, as the SMS may be out.
    """
    if isinstance(err, ProviderRateLimited):
        err.retry_after = clock.coarse(err.retry_after or clock.RETRY_AFTER_STEP)
        phone_state.hold_sends(phone, clock.now_seconds() + err.retry_after)
        provider_calls.note_throttled(phone, operation, err.retry_after)
    else:
        _log_provider_error(operation, phone, err)
    if err.nothing_sent:
        counters.refund_send(phone, sent_at, counted)


def _announce_sent(attempt: OtpAttempt, channel: str, *, resend: bool) -> None:
    signals.code_sent.send(
        sender=OtpAttempt,
        attempt=attempt,
        phone=attempt.phone,
        user=attempt.user,
        purpose=attempt.purpose,
        channel=channel,
        resend=resend,
    )


def _mark_failed(attempt_id: int) -> None:
    """Best effort: a database that is failing must not hide the original error."""
    try:
        OtpAttempt.objects.filter(pk=attempt_id).update(status=AttemptStatus.FAILED)
    except DatabaseError:
        logger.warning("could not mark an OTP attempt as failed")


# Reads of the phone's state a send makes while parallel sends for the same
# number change it between its read and its write. Each failed write means
# another send went through, so up to this many parallel sends for one number
# all get theirs (with the cooldown on, all but the first are refused anyway).
_CLAIM_TRIES = 16


def _within_send_limits(phone: str, region: str, purpose: str, reserve: Reserve[T]) -> tuple[T, counters.Counted, int]:
    """Count the send against every limit, then ``reserve(state, sends, now)`` it for the phone.

    The shared counters (prefix, country, budget) are counted first, by one
    statement of their own, so those rows are never held for a whole
    transaction; on PostgreSQL it also reads the phone's state. That state is
    then checked, and ``reserve`` records the send only if the state is
    unchanged (compare and swap, with no lock held in between); when a
    parallel send for the number wrote first, the state is read and checked
    again, so the second of two parallel sends sees the first one's
    cooldown. A refused send spends no budget (its counts are taken back)
    and leaves no row.

    :returns: what ``reserve`` returned, what was counted and the send's time
        (for :func:`counters.refund_send`).
    """
    try:
        now = clock.now_seconds()
        counted, state = counters.count_send(counters.send_counters(phone, region), now, phone)
        reserved = None
        try:
            reserved = _reserve_for_phone(state, now, reserve)
        finally:
            # Refused, or nothing to reserve (a resend with no live code): nothing counts.
            if reserved is None:
                counters.uncount_send(counted)
        return reserved, counted, now
    except (RateLimited, BudgetExhausted) as err:
        _log_refused_send(phone, purpose, err)
        raise


def _log_refused_send(phone: str, purpose: str, err: RateLimited | BudgetExhausted) -> None:
    """Log and signal a send a limit refused; a spent budget is the site's problem, so an error."""
    if isinstance(err, BudgetExhausted):
        events.log_event(events.SEND_BLOCKED, phone=phone, level=logging.ERROR, reason=str(err))
        reason = "send_budget"
    elif isinstance(err, counters.VelocityTripped):
        block = err.counter.key.split(":")[0]
        events.log_event(events.SEND_BLOCKED, phone=phone, level=logging.WARNING, reason=err.reason, block=block)
        reason = err.reason
    else:
        events.log_event(events.SEND_BLOCKED, phone=phone, reason=err.reason)
        reason = err.reason
    signals.send_blocked.send(sender=OtpAttempt, phone=phone, purpose=purpose, reason=reason)


def _reserve_for_phone(state: phone_state.PhoneLimits, now: int, reserve: Reserve[T]) -> T:
    """``reserve`` the send on the phone's ``state``, reading the state again while parallel sends change it."""
    for tries in range(_CLAIM_TRIES):
        if tries:
            state = phone_state.read_phone(state.phone)
        try:
            return reserve(state, phone_state.check_send_allowed(state, now), now)
        except phone_state.PhoneStateChanged:
            continue
    raise RateLimited("parallel sends for this phone", retry_after=clock.RETRY_AFTER_STEP)


def _record_delivery(attempt: OtpAttempt, pin_id: str) -> None:
    """Store the provider's pinId and make ``attempt`` the phone's only open one for its purpose.

    Ours becomes pending unless a newer send superseded it meanwhile (its pinId
    is kept either way, so the row accounts for the SMS); older open ones are
    superseded.
    """
    # One statement needs no transaction of its own; inside a caller's, a
    # savepoint keeps a duplicate pinId from breaking it.
    with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
        attempt_sql.record_delivery(attempt.pk, attempt.phone, attempt.purpose, pin_id)


def _resend_keeps_pin(sent_by: str, channel: str) -> bool:
    """Whether a PIN sent by ``sent_by`` may be delivered again by ``channel``.

    A resend reuses the template of the first send (Infobip's resend takes no
    messageId). With origin-bound codes SMS and calls have templates of their
    own, the SMS one ending with ``@host #code``: read out by a call it is
    noise, and an SMS from the call's template has no line to autofill. Then
    only a resend by the same channel keeps the PIN.
    """
    return sent_by == channel or not otp_settings.WEBOTP_DOMAIN


def resend_code(phone: str, *, user: User = None, purpose: str | None = None, channel: str = SMS) -> OtpAttempt:
    """Deliver the PIN already in flight for ``phone`` again (same PIN, same pinId).

    It is under the same cooldown and daily cap as a send. With no live attempt
    it is a send; so is a resend by the other channel while
    ``OTP["WEBOTP_DOMAIN"]`` is set (a new PIN, which supersedes the old one).

    :raises: as :func:`send_code`.
    """
    purpose = validate_purpose(purpose)
    channel = validate_channel(channel)
    phone, region = _checked_destination(phone, purpose)
    live = partial(_live_attempt, phone, purpose, channel, timezone.now())
    attempt, counted, sent_at = _within_send_limits(phone, region, purpose, live)
    if attempt is None or attempt.pin_id is None:  # _live_attempt only finds codes with a pinId
        return send_code(phone, user=user, purpose=purpose, channel=channel)
    pin_id = attempt.pin_id
    try:
        provider = get_provider()
        result: SendResult = call_provider(lambda: provider.resend(pin_id, channel=channel))
    except ProviderError as err:
        _send_failed(phone, "resend", err, sent_at, counted)
        if isinstance(err, PinNotFound):
            _close_pending(attempt.pk, AttemptStatus.EXPIRED)
            raise ProviderUnavailable("the provider no longer knows the PIN", nothing_sent=err.nothing_sent) from err
        raise
    if not result.delivered:
        events.log_event(events.SEND_FAILED, phone=phone, level=logging.WARNING, reason="not_delivered")
        raise SendRejected("the provider did not deliver the message")
    OtpAttempt.objects.filter(pk=attempt.pk).update(resends=F("resends") + 1)
    events.log_event(events.RESEND_ACCEPTED, phone=phone, attempt=attempt.pk, channel=channel)
    _announce_sent(attempt, channel, resend=True)
    return attempt


def _live_attempt(
    phone: str,
    purpose: str,
    channel: str,
    now: datetime,
    state: phone_state.PhoneLimits,
    sends: list[int],
    seconds: int,
) -> OtpAttempt | None:
    """The phone's newest code for ``purpose`` that ``channel`` may deliver again; None if none.

    Its resend is recorded on the phone's state.
    """
    attempt = (
        OtpAttempt.objects.filter(phone=phone, purpose=purpose, status=AttemptStatus.PENDING, expires_at__gt=now)
        .exclude(pin_id=None)
        .only("pk", "phone", "pin_id", "purpose", "user_id", "channel")
        .order_by("-pk")
        .first()
    )
    if attempt is None or not _resend_keeps_pin(attempt.channel, channel):
        return None
    phone_state.record_send(state, sends, seconds)
    return attempt


def verify_code(phone: str, pin: str, *, purpose: str | None = None) -> OtpAttempt:
    """Verify ``pin`` for the newest pending attempt of ``phone``.

    Every failure takes at least ``VERIFY_FAILURE_MIN_SECONDS``, and one that
    did not reach the provider about as long as recent verifies took to get
    its answer (:mod:`otp.verify_timing`), so timing does not tell a pending
    attempt from none.

    One attempt slot is reserved atomically before the provider is called, so
    parallel guesses never reach the provider more often than
    ``MAX_VERIFY_ATTEMPTS``. Success is a conditional update: it happens once
    per attempt, whatever the provider answers to repeated verifications.
    Failures count against the phone across PINs; at ``MAX_FAILURES_PER_PHONE``
    it is locked out with a growing, time-bounded backoff.

    :returns: the verified attempt.
    :raises InvalidPhoneNumber, InvalidInput: malformed input.
    :raises RateLimited: the phone is locked out after too many failures.
    :raises VerificationFailed: wrong, expired, used, superseded, unknown or exhausted.
    :raises ProviderError: the provider is unavailable or misconfigured.
    """
    timer = verify_timing.VerifyTimer()
    try:
        return _verify(phone, pin, purpose, timer)
    except VerificationFailed:
        apply_latency_floor(timer)
        raise


def apply_latency_floor(timer: verify_timing.VerifyTimer) -> None:
    """Wait until the failure floor of the verify ``timer`` times has passed."""
    remaining = timer.remaining()
    if remaining > 0:
        _sleep(remaining)


_sleep = time.sleep  # replaced in tests


def _verify(phone: str, pin: str, purpose: str | None, timer: verify_timing.VerifyTimer) -> OtpAttempt:
    phone = normalize_phone(phone, otp_settings.DEFAULT_REGION)
    pin = validate_pin(pin, otp_settings.PIN_LENGTH)
    purpose = validate_purpose(purpose)
    now = timezone.now()
    seconds = clock.now_seconds()
    max_attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    attempt = attempt_sql.claim_verify_slot(phone, purpose, now, seconds, max_attempts)
    if attempt is None or not attempt.pin_id:
        _verify_failed(phone, purpose, "no_pending_attempt")
    pin_id: str = attempt.pin_id
    if attempt.locked_until > seconds:
        events.log_event(events.RATE_LIMITED, phone=phone, scope="phone_lockout")
        raise RateLimited(
            "phone locked after failed verifications", retry_after=clock.coarse(attempt.locked_until - seconds)
        )
    if attempt.expired:
        _close_pending(attempt.pk, AttemptStatus.EXPIRED)
        _verify_failed(phone, purpose, "expired")
    slot = attempt.slot
    if slot is None:
        # Not closed here: verifies holding the last slots may still be at the
        # provider, and one of them may carry the right PIN. The last failing
        # one closes the attempt.
        _verify_failed(phone, purpose, "attempts_exhausted")

    try:
        provider = get_provider()
        with timer.asking_provider():
            result = call_provider(lambda: provider.verify(pin_id, pin))
    except PinNotFound:
        _close_pending(attempt.pk, AttemptStatus.EXPIRED)
        _verify_failed(phone, purpose, "unknown_to_provider")
    except ProviderRateLimited as err:
        # The one answer that depends on the endpoint, decided here where the
        # slot is handed back: the provider checked no PIN, so the client is
        # told to wait (429), where a throttled send is the site failing (503).
        OtpAttempt.objects.filter(pk=attempt.pk, verify_slots_used__gt=0).update(
            verify_slots_used=F("verify_slots_used") - 1
        )
        retry_after = clock.coarse(err.retry_after or clock.RETRY_AFTER_STEP)
        provider_calls.note_throttled(phone, "verify", retry_after)
        raise RateLimited("provider throttled verifies of this phone", retry_after=retry_after) from err
    except ProviderError as err:
        _log_provider_error("verify", phone, err)
        raise

    if result.verified:
        verified = _mark_verified(
            OtpAttempt(pk=attempt.pk, phone=phone, purpose=purpose, pin_id=pin_id, user_id=attempt.user_id)
        )
        if attempt.phone_failures:
            phone_state.reset_verify_failures(phone)
        events.log_event(events.VERIFY_SUCCESS, phone=phone, attempt=attempt.pk)
        return verified

    closing = _CLOSING_PIN_ERRORS.get(result.pin_error or "")
    # The verify holding the last slot closes the attempt (parallel ones each hold their own).
    if closing is None and (result.attempts_remaining == 0 or slot >= max_attempts):
        closing = AttemptStatus.EXHAUSTED
    if closing is not None:
        _close_pending(attempt.pk, closing)
    phone_state.record_verify_failure(phone, seconds)
    _verify_failed(phone, purpose, (result.pin_error or "not_verified").lower())


def _verify_failed(phone: str, purpose: str, reason: str) -> NoReturn:
    events.log_event(events.VERIFY_FAIL, phone=phone, reason=reason)
    signals.verification_failed.send(sender=OtpAttempt, phone=phone, purpose=purpose, reason=reason)
    raise VerificationFailed(reason)


def _log_provider_error(operation: str, phone: str, err: ProviderError) -> None:
    events.log_event(
        events.PROVIDER_ERROR,
        phone=phone,
        level=logging.ERROR,
        operation=operation,
        error=type(err).__name__,
        detail=str(err),
    )


def _mark_verified(attempt: OtpAttempt) -> OtpAttempt:
    verified_at = timezone.now()
    # Receivers of phone_verified write in the same transaction as the
    # verification; with none, the single UPDATE is atomic by itself.
    receivers = signals.phone_verified.has_listeners(OtpAttempt)
    with transaction.atomic() if receivers else nullcontext():
        status = attempt_sql.mark_verified(attempt.pk, verified_at)
        if status == AttemptStatus.VERIFIED:
            attempt.status = AttemptStatus.VERIFIED
            attempt.verified_at = verified_at
            if receivers:
                signals.phone_verified.send(
                    sender=OtpAttempt, attempt=attempt, phone=attempt.phone, user=attempt.user, purpose=attempt.purpose
                )
    # Outside the transaction, so a provider answer that came after the
    # expiry leaves the attempt expired.
    if status != AttemptStatus.VERIFIED:
        _verify_failed(attempt.phone, attempt.purpose, "expired" if status else "closed_meanwhile")
    return attempt


def _close_pending(attempt_id: int, status: AttemptStatus) -> None:
    """Pending -> ``status`` (expired, exhausted...); a no-op if it is no longer pending."""
    OtpAttempt.objects.filter(pk=attempt_id, status=AttemptStatus.PENDING).update(status=status)


def invalidate_attempts(attempt_ids: Iterable[int]) -> int:
    """Close the given attempts if they are still open; returns how many were."""
    return OtpAttempt.objects.filter(pk__in=list(attempt_ids), status__in=_OPEN_STATUSES).update(
        status=AttemptStatus.INVALIDATED
    )
