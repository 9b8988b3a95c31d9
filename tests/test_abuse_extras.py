"""Timing parity of verify failures, the send challenge hook, and conversion monitoring."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from otp import services, verify_timing
from otp.limits.conversion import conversion_report
from otp.models import AttemptStatus, OtpAttempt
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db


# -- timing parity ----------------------------------------------------------------


@pytest.fixture
def floors(monkeypatch):
    """Every call of the latency floor, with the timer it was given."""
    calls: list[float] = []
    monkeypatch.setattr(services, "apply_latency_floor", calls.append)
    return calls


@pytest.mark.parametrize("case", ["unknown", "wrong", "expired", "exhausted"])
def test_every_verify_failure_goes_through_the_floor(otp_api, outbox, settings, floors, case):
    settings.OTP = {**settings.OTP, "MAX_VERIFY_ATTEMPTS": 1}
    if case != "unknown":
        otp_api.send()
    pin = outbox[0].pin if outbox else "123456"
    wrong = "000000" if pin != "000000" else "111111"
    if case == "expired":
        OtpAttempt.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    if case == "exhausted":
        otp_api.verify(wrong)
        floors.clear()
    response = otp_api.verify(pin if case in ("expired", "exhausted") else wrong)
    assert response.status_code == 401 and len(floors) == 1


def test_success_does_not_wait(otp_api, outbox, floors):
    otp_api.send()
    assert otp_api.verify(outbox[0].pin).status_code == 200
    assert floors == []


def test_the_floor_waits_only_for_what_is_left(monkeypatch, settings):
    settings.OTP = {**settings.OTP, "VERIFY_FAILURE_MIN_SECONDS": 0.3}
    waited: list[float] = []
    monkeypatch.setattr(services, "_sleep", waited.append)
    now = [100.0]
    monkeypatch.setattr(verify_timing, "clock", lambda: now[0])
    timer = verify_timing.VerifyTimer()
    now[0] = 100.1
    services.apply_latency_floor(timer)
    now[0] = 100.5  # already slower than the floor
    services.apply_latency_floor(timer)
    assert waited == [pytest.approx(0.2)]


# -- the send challenge ---------------------------------------------------------------

CHECKED: list[tuple[str, str]] = []


def accept_only_good(request, token):
    CHECKED.append((request.META["REMOTE_ADDR"], token))
    return token == "good-token"


def broken_verifier(request, token):
    raise RuntimeError("verifier service down")


@pytest.fixture
def challenge(settings):
    CHECKED.clear()
    settings.OTP = {**settings.OTP, "SEND_CHALLENGE_VERIFIER": "tests.test_abuse_extras.accept_only_good"}


@pytest.mark.parametrize("token", [None, "", "bad-token"])
def test_missing_or_bad_challenge_is_refused_before_the_provider(otp_api, outbox, challenge, token):
    body = {"phoneNumber": PHONE} if token is None else {"phoneNumber": PHONE, "challengeToken": token}
    response = otp_api.post("/send-otp", body)
    assert response.status_code == 400 and response.json()["code"] == "challenge_failed"
    assert outbox == [] and not OtpAttempt.objects.exists()


def test_good_challenge_sends_and_resend_is_checked_too(otp_api, outbox, challenge):
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "challengeToken": "good-token"}).status_code == 200
    assert otp_api.post("/resend-otp", {"phoneNumber": PHONE}).status_code == 400
    assert CHECKED == [("127.0.0.1", "good-token")] and len(outbox) == 1


def test_a_failing_verifier_fails_closed(otp_api, outbox, settings, caplog):
    settings.OTP = {**settings.OTP, "SEND_CHALLENGE_VERIFIER": "tests.test_abuse_extras.broken_verifier"}
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE, "challengeToken": "x"})
    assert response.status_code == 400 and outbox == []


def test_challenge_token_is_an_unknown_field_only_by_type(otp_api, outbox):
    # Without a verifier the field is accepted and ignored; a non-string is bad input.
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "challengeToken": "t"}).status_code == 200
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "challengeToken": 5}).status_code == 400


# -- conversion monitoring ---------------------------------------------------------------


def seed(prefix: str, sent: int, verified: int, *, hours_ago: float = 1) -> None:
    created = timezone.now() - timedelta(hours=hours_ago)
    OtpAttempt.objects.bulk_create(
        OtpAttempt(
            phone=f"{prefix}{i:04d}",
            status=AttemptStatus.VERIFIED if i < verified else AttemptStatus.EXPIRED,
            created_at=created,
            expires_at=created + timedelta(minutes=5),
        )
        for i in range(sent)
    )


def test_low_conversion_prefix_is_flagged(caplog):
    seed("+44740012", 100, 5)  # UK mobiles, almost nobody verifies
    seed("+1415555", 100, 70)
    seed("+1212555", 100, 5, hours_ago=30)  # outside the window
    caplog.set_level(logging.WARNING, logger="otp.security")
    groups = {(g.kind, g.key): g for g in conversion_report(hours=24, min_sends=50, threshold=0.2)}
    assert groups[("prefix", "+44740012")].flagged and groups[("prefix", "+44740012")].rate == 0.05
    assert not groups[("prefix", "+1415555")].flagged
    assert groups[("country", "GB")].flagged and not groups[("country", "US")].flagged
    assert ("prefix", "+1212555") not in groups
    flagged = [r.otp_event for r in caplog.records if r.otp_event["event"] == "otp_low_conversion"]
    assert {(e["group"], e["key"]) for e in flagged} == {("prefix", "+44740012"), ("country", "GB")}


def test_small_volume_is_not_flagged():
    seed("+44740012", 10, 0)
    assert not any(g.flagged for g in conversion_report(min_sends=50))


def test_report_command():
    seed("+44740012", 60, 3)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("otp_conversion_report", "--min-sends", "50", "--fail-on-alert", stdout=out)
    assert exit_info.value.code == 2
    assert "+44740012" in out.getvalue() and "LOW" in out.getvalue() and "2 groups, 2 flagged." in out.getvalue()
