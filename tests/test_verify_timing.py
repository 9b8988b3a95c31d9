"""The failure floor of a verify: one that did not ask the provider waits as long as recent answers took.

The clock and the sleep are injected: nothing here waits.
"""

from __future__ import annotations

import json
import threading

import pytest

from otp import services, verify_timing
from otp.exceptions import VerificationFailed
from tests.conftest import PHONE, ManualClock

pytestmark = pytest.mark.django_db

PIN_URL = "https://xyz.api.infobip.com/2fa/2/pin"
OTHER_PHONE = "+14155550123"


@pytest.fixture
def clock(monkeypatch):
    fake = ManualClock()
    monkeypatch.setattr(verify_timing, "clock", fake)
    return fake


@pytest.fixture
def slept(monkeypatch, clock):
    """What the floor waited, each wait moving the clock on."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    monkeypatch.setattr(services, "_sleep", sleep)
    return waits


@pytest.fixture
def window(monkeypatch):
    fresh = verify_timing.RoundTrips()
    monkeypatch.setattr(verify_timing, "round_trips", fresh)
    return fresh


@pytest.fixture
def floor_settings(settings):
    settings.OTP = {**settings.OTP, "VERIFY_FAILURE_MIN_SECONDS": 0.25, "VERIFY_FAILURE_MAX_SECONDS": 1.0}


# -- the window -------------------------------------------------------------------


def test_the_window_keeps_the_last_round_trips_only():
    window = verify_timing.RoundTrips(size=3)
    assert window.median() is None
    for seconds in (9.0, 9.0, 0.1, 0.3, 0.2):
        window.record(seconds)
    assert window.median() == pytest.approx(0.2)


def test_the_window_takes_parallel_records_and_reads():
    window = verify_timing.RoundTrips(size=8)
    errors: list[BaseException] = []

    def writer() -> None:
        for i in range(2000):
            window.record(i % 5 / 10)

    def reader() -> None:
        try:
            for _ in range(2000):
                window.median()
        except BaseException as err:  # collected, asserted below
            errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(4)] + [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(window) == 8


# -- the floor --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "asked_provider", "expected"),
    [
        ([], False, 0.25),  # nothing measured yet: the minimum
        ([0.1, 0.1, 0.1], False, 0.25),  # a fast provider: still the minimum
        ([0.3, 0.4, 0.35], False, 0.35),  # the median
        ([0.3, 5.0, 5.0], False, 1.0),  # a slow provider: capped
        ([0.3, 0.4, 0.35], True, 0.25),  # the provider was asked: no more than the minimum
    ],
)
def test_failure_floor(window, floor_settings, samples, asked_provider, expected):
    for seconds in samples:
        window.record(seconds)
    assert verify_timing.failure_floor(asked_provider=asked_provider) == pytest.approx(expected)


def test_the_minimum_wins_over_a_lower_cap(window, settings):
    settings.OTP = {**settings.OTP, "VERIFY_FAILURE_MIN_SECONDS": 0.5, "VERIFY_FAILURE_MAX_SECONDS": 0.2}
    window.record(0.3)
    assert verify_timing.failure_floor(asked_provider=False) == pytest.approx(0.5)


# -- through verify_code ----------------------------------------------------------


@pytest.fixture
def slow_provider(infobip, clock):
    """Infobip answering "wrong PIN" after ``delay[0]`` seconds of the injected clock."""
    delay = [0.3]

    def wrong_pin(request):
        clock.advance(delay[0])
        return 200, {}, json.dumps({"pinId": "P1", "verified": False, "pinError": "WRONG_PIN", "attemptsRemaining": 4})

    infobip.post(PIN_URL, json={"pinId": "P1"})
    infobip.add_callback("POST", f"{PIN_URL}/P1/verify", callback=wrong_pin)
    return delay


def test_a_failure_without_a_provider_call_waits_as_long_as_the_provider_answers(
    slow_provider, window, slept, clock, floor_settings
):
    services.send_code(PHONE)
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "000000")
    assert slept == []  # the provider's 0.3 s are past the minimum
    assert window.median() == pytest.approx(0.3)

    started = clock()
    with pytest.raises(VerificationFailed):
        services.verify_code(OTHER_PHONE, "000000")  # no code: the provider is not asked
    assert slept == [pytest.approx(0.3)] and clock() - started == pytest.approx(0.3)


def test_an_expired_code_waits_as_long_too(slow_provider, window, slept, floor_settings):
    from otp.models import OtpAttempt

    window.record(0.4)
    services.send_code(PHONE)
    OtpAttempt.objects.update(expires_at="2000-01-01T00:00:00Z")
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "000000")
    assert slept == [pytest.approx(0.4)]


def test_a_failure_that_asked_the_provider_is_not_padded_to_the_median(slow_provider, window, slept, floor_settings):
    for _ in range(3):
        window.record(0.8)
    slow_provider[0] = 0.1
    services.send_code(PHONE)
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "000000")
    assert slept == [pytest.approx(0.15)]  # up to the minimum only
