"""Rules the service layer enforces on the database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from otp import services
from otp.exceptions import (
    InvalidInput,
    InvalidPhoneNumber,
    ProviderUnavailable,
    SendRejected,
    VerificationFailed,
)
from otp.models import AttemptStatus, OtpAttempt
from otp.providers import locmem
from otp.providers.base import SendResult, VerifyResult
from otp.signals import phone_verified, verification_failed
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

OTHER_PHONE = "+447911123456"
INFOBIP_PIN_URL = "https://xyz.api.infobip.com/2fa/2/pin"


def wrong(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


def statuses() -> list[str]:
    return list(OtpAttempt.objects.order_by("pk").values_list("status", flat=True))


def test_send_records_pending_attempt(outbox):
    before = timezone.now()
    attempt = services.send_code("+1 (415) 555-2671")
    row = OtpAttempt.objects.get()
    assert row.pk == attempt.pk and row.phone == PHONE and row.status == AttemptStatus.PENDING
    assert row.pin_id == outbox[0].pin_id and row.provider == "locmem"
    assert timedelta(seconds=299) < row.expires_at - before <= timedelta(seconds=301)
    assert row.verified_at is None and row.verify_slots_used == 0


def test_row_is_committed_before_the_provider_is_called(settings, monkeypatch):
    seen = []

    def spy_send(self, phone, channel="sms"):
        seen.append(list(OtpAttempt.objects.values_list("phone", "status")))
        return SendResult(pin_id="PIN-1")

    monkeypatch.setattr(locmem.LocmemProvider, "send", spy_send)
    services.send_code(PHONE)
    assert seen == [[(PHONE, AttemptStatus.SENDING)]]


def test_new_send_supersedes_older_pending(outbox):
    services.send_code(PHONE)
    services.send_code(OTHER_PHONE)
    services.send_code(PHONE)
    assert statuses() == [AttemptStatus.SUPERSEDED, AttemptStatus.PENDING, AttemptStatus.PENDING]
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, outbox[0].pin if outbox[0].pin != outbox[2].pin else wrong(outbox[2].pin))
    assert services.verify_code(PHONE, outbox[2].pin).status == AttemptStatus.VERIFIED


def test_a_slower_older_send_never_overrides_a_newer_one(outbox):
    # An older send still waiting for its provider while a newer one completes.
    now = timezone.now()
    old = OtpAttempt.objects.create(
        phone=PHONE, status=AttemptStatus.SENDING, created_at=now, expires_at=now + timedelta(minutes=5)
    )
    services.send_code(PHONE)
    services._record_delivery(old, "LATE-PIN-ID")
    row = OtpAttempt.objects.get(pk=old.pk)
    assert row.status == AttemptStatus.SUPERSEDED and row.pin_id == "LATE-PIN-ID"
    assert services.verify_code(PHONE, outbox[0].pin).status == AttemptStatus.VERIFIED


def test_failed_send_keeps_the_code_already_delivered(outbox):
    services.send_code(PHONE)
    locmem.fail_next_send(ProviderUnavailable("down"))
    with pytest.raises(ProviderUnavailable):
        services.send_code(PHONE)
    assert statuses() == [AttemptStatus.PENDING, AttemptStatus.FAILED]
    assert services.verify_code(PHONE, outbox[0].pin).status == AttemptStatus.VERIFIED


def test_undelivered_send_is_recorded_and_supersedes_nothing(outbox, infobip):
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "P1", "smsStatus": "MESSAGE_SENT"})
    services.send_code(PHONE)
    infobip.replace("POST", INFOBIP_PIN_URL, json={"pinId": "P2", "smsStatus": "MESSAGE_NOT_SENT"})
    with pytest.raises(SendRejected):
        services.send_code(PHONE)
    rows = list(OtpAttempt.objects.order_by("pk").values_list("pin_id", "status"))
    assert rows == [("P1", AttemptStatus.PENDING), ("P2", AttemptStatus.FAILED)]


def test_duplicate_pin_id_from_provider_fails_closed(infobip):
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "SAME"})
    services.send_code(PHONE)
    with pytest.raises(ProviderUnavailable):
        services.send_code(OTHER_PHONE)
    assert statuses() == [AttemptStatus.PENDING, AttemptStatus.FAILED]


def test_verify_unknown_phone_calls_no_provider(infobip):
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "123456")
    assert len(infobip.calls) == 0


def test_verify_rejects_bad_input_before_anything(outbox):
    services.send_code(PHONE)
    with pytest.raises(InvalidInput):
        services.verify_code(PHONE, "12345")
    with pytest.raises(InvalidPhoneNumber):
        services.verify_code("+1415", outbox[0].pin)
    assert OtpAttempt.objects.get().verify_slots_used == 0


def test_local_expiry_closes_without_provider_call(outbox, infobip):
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "P1"})
    services.send_code(PHONE)
    with time_machine.travel(timezone.now() + timedelta(seconds=301)), pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "123456")
    assert len(infobip.calls) == 1  # only the send
    assert statuses() == [AttemptStatus.EXPIRED]
    assert OtpAttempt.objects.get().verify_slots_used == 0  # no verify slot was taken


def test_a_locked_out_phone_takes_no_verify_slot(outbox):
    from otp.exceptions import RateLimited
    from otp.models import PhoneState

    services.send_code(PHONE)
    PhoneState.objects.filter(phone=PHONE).update(locked_until=int(timezone.now().timestamp()) + 600)
    with pytest.raises(RateLimited):
        services.verify_code(PHONE, outbox[0].pin)
    assert OtpAttempt.objects.get().verify_slots_used == 0
    assert statuses() == [AttemptStatus.PENDING]


def test_verify_just_before_expiry_succeeds(outbox):
    services.send_code(PHONE)
    with time_machine.travel(timezone.now() + timedelta(seconds=298)):
        assert services.verify_code(PHONE, outbox[0].pin).status == AttemptStatus.VERIFIED


def test_ttl_setting_is_honoured(outbox, settings):
    settings.OTP = {**settings.OTP, "CODE_TTL_SECONDS": 60}
    services.send_code(PHONE)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)), pytest.raises(VerificationFailed):
        services.verify_code(PHONE, outbox[0].pin)


def test_attempt_cap_then_even_the_right_pin_fails(outbox, settings):
    settings.OTP = {**settings.OTP, "MAX_VERIFY_ATTEMPTS": 3}
    services.send_code(PHONE)
    pin = outbox[0].pin
    for _ in range(3):
        with pytest.raises(VerificationFailed):
            services.verify_code(PHONE, wrong(pin))
    assert statuses() == [AttemptStatus.EXHAUSTED]
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, pin)
    assert OtpAttempt.objects.get().verify_slots_used == 3


def test_success_after_failures_counts_them(outbox):
    services.send_code(PHONE)
    for _ in range(2):
        with pytest.raises(VerificationFailed):
            services.verify_code(PHONE, wrong(outbox[0].pin))
    attempt = services.verify_code(PHONE, outbox[0].pin)
    row = OtpAttempt.objects.get()
    assert row.verify_slots_used == 2 and row.verified_at == attempt.verified_at


def test_single_use_even_when_provider_verifies_again(infobip):
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "P1"})
    infobip.post(f"{INFOBIP_PIN_URL}/P1/verify", json={"verified": True, "attemptsRemaining": 0})
    services.send_code(PHONE)
    first = services.verify_code(PHONE, "123456")
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "123456")
    assert OtpAttempt.objects.get().verified_at == first.verified_at
    assert len(infobip.calls) == 2  # the second verify found no pending attempt


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"verified": False, "pinError": "TTL_EXPIRED"}, AttemptStatus.EXPIRED),
        ({"verified": False, "pinError": "NO_MORE_PIN_ATTEMPTS", "attemptsRemaining": 0}, AttemptStatus.EXHAUSTED),
        ({"verified": False, "pinError": "WRONG_PIN", "attemptsRemaining": 0}, AttemptStatus.EXHAUSTED),
        ({"verified": False, "pinError": "WRONG_PIN", "attemptsRemaining": 2}, AttemptStatus.PENDING),
        ({"verified": False, "pinError": "UNDOCUMENTED"}, AttemptStatus.PENDING),
        ({"verified": False}, AttemptStatus.PENDING),
    ],
)
def test_provider_failures_map_to_status(infobip, answer, status):
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "P1"})
    infobip.post(f"{INFOBIP_PIN_URL}/P1/verify", json=answer)
    services.send_code(PHONE)
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "123456")
    assert statuses() == [status]
    assert OtpAttempt.objects.get().verify_slots_used == 1


def test_provider_404_closes_the_attempt(infobip):
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "P1"})
    infobip.post(f"{INFOBIP_PIN_URL}/P1/verify", status=404)
    services.send_code(PHONE)
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "123456")
    assert statuses() == [AttemptStatus.EXPIRED]


def test_provider_outage_on_verify_keeps_attempt_pending_and_counted(infobip):
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "P1"})
    infobip.post(f"{INFOBIP_PIN_URL}/P1/verify", status=503)
    services.send_code(PHONE)
    with pytest.raises(ProviderUnavailable):
        services.verify_code(PHONE, "123456")
    row = OtpAttempt.objects.get()
    assert row.status == AttemptStatus.PENDING and row.verify_slots_used == 1


def test_signal_carries_attempt_phone_and_user(outbox, django_user_model):
    user = django_user_model.objects.create_user("bob")
    received = []

    def receiver(sender, attempt, phone, user, **kwargs):
        received.append((sender, attempt.pk, phone, user))

    phone_verified.connect(receiver)
    try:
        attempt = services.send_code(PHONE, user=user)
        services.verify_code(PHONE, outbox[0].pin)
    finally:
        phone_verified.disconnect(receiver)
    assert received == [(OtpAttempt, attempt.pk, PHONE, user)]


def test_failing_receiver_rolls_back_the_verification(outbox):
    def receiver(**kwargs):
        raise RuntimeError("site bug")

    phone_verified.connect(receiver)
    try:
        services.send_code(PHONE)
        with pytest.raises(RuntimeError):
            services.verify_code(PHONE, outbox[0].pin)
    finally:
        phone_verified.disconnect(receiver)
    row = OtpAttempt.objects.get()
    assert row.status == AttemptStatus.PENDING and row.verified_at is None


def test_anonymous_user_is_not_recorded(outbox):
    from django.contrib.auth.models import AnonymousUser

    services.send_code(PHONE, user=AnonymousUser())
    assert OtpAttempt.objects.get().user is None


def test_invalidate_attempts_only_closes_open_ones(outbox):
    a = services.send_code(PHONE)
    b = services.send_code(OTHER_PHONE)
    services.verify_code(OTHER_PHONE, outbox[1].pin)
    assert services.invalidate_attempts([a.pk, b.pk]) == 1
    assert statuses() == [AttemptStatus.INVALIDATED, AttemptStatus.VERIFIED]


def test_provider_verify_result_for_simulated_success_reports_zero_remaining(outbox):
    services.send_code(PHONE)
    result = locmem.LocmemProvider().verify(outbox[0].pin_id, outbox[0].pin)
    assert result == VerifyResult(verified=True, attempts_remaining=0)


@pytest.mark.parametrize("receiver", [False, True], ids=["alone", "in_a_transaction_with_receivers"])
def test_a_provider_answer_after_the_expiry_does_not_verify(otp_api, infobip, receiver):
    """The provider says verified, but its answer came after the code's time to live."""
    infobip.post(INFOBIP_PIN_URL, json={"pinId": "P1"})
    otp_api.send()
    failures: list[str] = []

    def on_failure(sender, reason, **kwargs):
        failures.append(reason)

    def on_verified(sender, **kwargs):
        raise AssertionError("phone_verified sent for an expired code")

    verification_failed.connect(on_failure)
    if receiver:
        phone_verified.connect(on_verified)
    with time_machine.travel(timezone.now() + timedelta(seconds=299), tick=False) as clock:

        def slow_verified(request):
            clock.shift(timedelta(seconds=2))  # the answer arrives past expires_at
            return 200, {}, json.dumps({"pinId": "P1", "verified": True, "attemptsRemaining": 0})

        infobip.add_callback("POST", f"{INFOBIP_PIN_URL}/P1/verify", callback=slow_verified)
        try:
            response = otp_api.verify("123456")
        finally:
            verification_failed.disconnect(on_failure)
            phone_verified.disconnect(on_verified)
    assert response.status_code == 401
    row = OtpAttempt.objects.get()
    assert row.status == AttemptStatus.EXPIRED and row.verified_at is None
    assert failures == ["expired"]
