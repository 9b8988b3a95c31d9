"""What the provider's refusals cost: the breaker, the phone's limits and the site budget.

An answer about one number or request (a 429, a 400, a 404) never counts
toward the circuit breaker, so one client cannot open it for everyone. A send
the provider refused with its own error answer (nothing went out) takes
nothing off the phone's cooldown, daily cap or the site's budget; a send
whose outcome is unknown counts as sent.
"""

from __future__ import annotations

import itertools
import json
import logging
from datetime import timedelta

import pytest
import requests
import time_machine
import urllib3
from django.utils import timezone

from otp.limits import counters, phone_state
from otp.models import AttemptStatus, OtpAttempt, PhoneState, RateCounter
from otp.providers import calls as provider_calls
from otp.providers import circuit
from tests.conftest import INFOBIP_HOST, PHONE

pytestmark = pytest.mark.django_db

PIN_URL = "https://xyz.api.infobip.com/2fa/2/pin"
ENVELOPE = {"requestError": {"serviceException": {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}}}
THROTTLED = {"requestError": {"serviceException": {"messageId": "TOO_MANY_REQUESTS", "text": "Too many requests"}}}


def numbers(count: int) -> list[str]:
    return [f"+1415{300 + i:03d}{2000 + i:04d}" for i in range(count)]


def calls(mock, suffix: str = "/2fa/2/pin") -> int:
    return sum(1 for call in mock.calls if call.request.url.endswith(suffix))


def sends_ok(mock) -> None:
    """Infobip accepts every send from now on, each with a new pinId."""
    pin_ids = (f"PIN{n:08d}" for n in itertools.count())
    mock.remove("POST", PIN_URL)
    mock.add_callback("POST", PIN_URL, callback=lambda request: (200, {}, json.dumps({"pinId": next(pin_ids)})))


def events(caplog, name: str) -> list[dict]:
    return [r.otp_event for r in caplog.records if getattr(r, "otp_event", {}).get("event") == name]


# -- the circuit breaker -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, THROTTLED), (400, ENVELOPE), (404, ENVELOPE), (422, {"x": 1})],
    ids=["429", "400", "404", "422"],
)
def test_answers_about_one_send_never_open_the_breaker(otp_api, infobip, settings, status, body):
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 3}
    infobip.post(PIN_URL, status=status, json=body)
    phones = numbers(7)
    for phone in phones[:6]:
        assert otp_api.send(phone).status_code == 503
    assert circuit.state() == circuit.CLOSED
    sends_ok(infobip)
    assert otp_api.send(phones[6]).status_code == 200


@pytest.mark.parametrize("status", [429, 404])
def test_answers_about_one_pin_never_open_the_breaker(otp_api, infobip, settings, status):
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 3}
    sends_ok(infobip)
    first, second = numbers(2)
    assert otp_api.send(first).status_code == 200
    pin_id = OtpAttempt.objects.get(phone=first).pin_id
    infobip.post(f"{PIN_URL}/{pin_id}/verify", status=status, json=THROTTLED if status == 429 else ENVELOPE)
    for _ in range(6):
        otp_api.send(first)  # a 404 closes the attempt: send a new one each time
        attempt = OtpAttempt.objects.filter(phone=first).order_by("-pk").first()
        assert attempt is not None
        infobip.post(f"{PIN_URL}/{attempt.pin_id}/verify", status=status, json=THROTTLED)
        assert otp_api.verify("123456", first).status_code in (401, 429)
    assert circuit.state() == circuit.CLOSED
    assert otp_api.send(second).status_code == 200


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "json": ENVELOPE},
        {"status": 502, "body": "<html>Bad Gateway</html>"},
        {"status": 401, "json": ENVELOPE},
        {"status": 403, "json": ENVELOPE},
        {"body": requests.ReadTimeout("read")},
        {"body": requests.ConnectionError("refused")},
        {"status": 200, "body": "<html>"},
    ],
    ids=["500", "502", "401", "403", "timeout", "connection", "malformed"],
)
def test_breakage_and_misconfiguration_still_open_the_breaker(otp_api, infobip, settings, answer):
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 3}
    infobip.post(PIN_URL, **answer)
    phones = numbers(4)
    for phone in phones[:3]:
        assert otp_api.send(phone).status_code == 503
    assert circuit.state() == circuit.OPEN
    assert otp_api.send(phones[3]).status_code == 503
    assert calls(infobip) == 3


# -- a 429 on verify -------------------------------------------------------------------


def test_a_throttled_verify_is_429_for_that_client_and_costs_no_attempt(otp_api, infobip, settings):
    settings.OTP = {**settings.OTP, "MAX_FAILURES_PER_PHONE": 20}
    infobip.post(PIN_URL, json={"pinId": "P1"})
    assert otp_api.send().status_code == 200
    infobip.post(f"{PIN_URL}/P1/verify", status=429, headers={"Retry-After": "90"}, json=THROTTLED)
    response = otp_api.verify("123456")
    assert response.status_code == 429
    assert response.json() == {"error": "Too many requests. Please try again later.", "code": "rate_limited"}
    assert response.headers["Retry-After"] == "120"  # at least Infobip's, in whole minutes
    attempt = OtpAttempt.objects.get()
    assert attempt.status == AttemptStatus.PENDING and attempt.verify_slots_used == 0  # the slot came back
    assert PhoneState.objects.get(phone=PHONE).consecutive_failures == 0
    infobip.replace("POST", f"{PIN_URL}/P1/verify", json={"verified": True, "pinId": "P1"})
    assert otp_api.verify("123456").status_code == 200


# -- a 429 on send ----------------------------------------------------------------------


def test_a_throttled_send_holds_that_phone_for_the_providers_wait(otp_api, infobip, settings):
    settings.OTP = {**settings.OTP, "RESEND_COOLDOWN_SECONDS": 60}
    infobip.post(PIN_URL, status=429, headers={"Retry-After": "150"}, json=THROTTLED)
    response = otp_api.send()
    assert response.status_code == 503 and response.headers["Retry-After"] == "180"
    sends_ok(infobip)
    held = otp_api.send()
    assert held.status_code == 429 and int(held.headers["Retry-After"]) >= 150
    assert calls(infobip) == 1  # the held phone never reached Infobip
    other = numbers(1)[0]
    assert otp_api.send(other).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(seconds=181), tick=False):
        assert otp_api.send().status_code == 200  # no cooldown either: nothing was sent
    assert calls(infobip) == 3


def test_many_numbers_throttled_within_a_minute_raise_one_alert(settings, caplog):
    settings.OTP = {**settings.OTP, "PROVIDER_THROTTLE_ALERT_NUMBERS": 3}
    caplog.set_level(logging.INFO, logger="otp.security")
    phones = numbers(5)
    for phone in [phones[0], phones[0], phones[1], phones[1], phones[2], phones[3], phones[4]]:
        provider_calls.note_throttled(phone, "verify", 60)
    assert len(events(caplog, "otp_provider_throttled")) == 7
    (alert,) = events(caplog, "otp_provider_throttle_alert")
    assert alert["numbers"] == 3
    settings.OTP = {**settings.OTP, "PROVIDER_THROTTLE_ALERT_NUMBERS": None}
    provider_calls.note_throttled(numbers(9)[8], "send", 60)


# -- a send the provider refused ----------------------------------------------------------


REFUSALS = {
    "500 with Infobip's error": {"status": 500, "json": ENVELOPE},
    "400 with Infobip's error": {"status": 400, "json": ENVELOPE},
    "401 with Infobip's error": {"status": 401, "json": ENVELOPE},
    "connection refused": {
        "body": requests.ConnectionError(
            urllib3.exceptions.MaxRetryError(
                urllib3.HTTPSConnectionPool(INFOBIP_HOST),
                "/2fa/2/pin",
                urllib3.exceptions.NewConnectionError(urllib3.connection.HTTPSConnection(INFOBIP_HOST), "refused"),
            )
        )
    },
    "connect timeout": {"body": requests.ConnectTimeout("connect")},
}
UNKNOWN = {
    "read timeout": {"body": requests.ReadTimeout("read")},
    "502 from a proxy": {"status": 502, "body": "<html>Bad Gateway</html>", "content_type": "text/html"},
    "504 from a proxy": {"status": 504, "json": {"message": "upstream timed out"}},
}


@pytest.fixture
def strict_limits(settings):
    settings.OTP = {
        **settings.OTP,
        "RESEND_COOLDOWN_SECONDS": 60,
        "MAX_SENDS_PER_PHONE_PER_DAY": 1,
        "MAX_SENDS_PER_HOUR": 1,
        "MAX_SENDS_PER_PREFIX_PER_HOUR": 20,
        "CIRCUIT_FAILURES": None,
    }


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_send_the_provider_refused_can_be_retried_at_once(otp_api, infobip, strict_limits, refusal):
    infobip.post(PIN_URL, **refusal)
    assert otp_api.send().status_code == 503
    sends_ok(infobip)
    # No cooldown, the daily cap of 1 and the hourly budget of 1 both still free.
    assert otp_api.send().status_code == 200
    assert calls(infobip) == 2
    statuses = list(OtpAttempt.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == [AttemptStatus.FAILED, AttemptStatus.PENDING]  # the refusal stays on record
    prefix = RateCounter.objects.get(key__startswith=counters.PREFIX)
    assert prefix.count == 2  # the prefix still counts every request
    assert RateCounter.objects.get(key=f"{counters.BUDGET}hour").count == 1


@pytest.mark.parametrize("answer", UNKNOWN.values(), ids=UNKNOWN.keys())
def test_a_send_whose_outcome_is_unknown_counts_as_sent(otp_api, infobip, strict_limits, settings, answer):
    settings.OTP = {**settings.OTP, "MAX_SENDS_PER_HOUR": 5}
    infobip.post(PIN_URL, **answer)
    assert otp_api.send().status_code == 503
    sends_ok(infobip)
    retry = otp_api.send()
    assert retry.status_code == 429  # the SMS may be out: the cooldown holds
    assert calls(infobip) == 1
    assert RateCounter.objects.get(key=f"{counters.BUDGET}hour").count == 1


def test_a_resend_the_provider_refused_is_given_back_too(otp_api, infobip, settings):
    settings.OTP = {**settings.OTP, "RESEND_COOLDOWN_SECONDS": 60, "MAX_SENDS_PER_PHONE_PER_DAY": 2}
    infobip.post(PIN_URL, json={"pinId": "P1"})
    assert otp_api.send().status_code == 200
    infobip.post(f"{PIN_URL}/P1/resend", status=500, json=ENVELOPE)
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        assert otp_api.post("/resend-otp", {"phoneNumber": PHONE}).status_code == 503
        infobip.replace("POST", f"{PIN_URL}/P1/resend", json={"pinId": "P1"})
        assert otp_api.post("/resend-otp", {"phoneNumber": PHONE}).status_code == 200
    assert phone_state.read_phone(PHONE).sends and len(phone_state.read_phone(PHONE).sends) == 2
