"""The development and locmem providers behave like Infobip without a network."""

from __future__ import annotations

import logging
import time

import pytest

from otp.exceptions import OtpConfigurationError, PinNotFound
from otp.providers import get_provider, locmem
from otp.providers.development import DevelopmentProvider
from otp.providers.locmem import LocmemProvider

PHONE = "+14155552671"


def test_locmem_outbox_and_verify(outbox):
    provider = LocmemProvider()
    result = provider.send(PHONE)
    message = outbox[0]
    assert message.phone == PHONE and message.pin_id == result.pin_id
    assert message.pin.isdigit() and len(message.pin) == 6 and message.pin in message.text
    assert provider.verify(result.pin_id, message.pin).verified is True


def test_pins_are_random(outbox):
    provider = LocmemProvider()
    for _ in range(30):
        provider.send(PHONE)
    assert len({m.pin for m in outbox}) > 20 and len({m.pin_id for m in outbox}) == 30


def test_wrong_pin_then_exhausted(outbox):
    provider = LocmemProvider(pin_attempts=2)
    pin_id = provider.send(PHONE).pin_id
    wrong = "000000" if outbox[0].pin != "000000" else "111111"
    first = provider.verify(pin_id, wrong)
    assert (first.verified, first.pin_error, first.attempts_remaining) == (False, "WRONG_PIN", 1)
    assert provider.verify(pin_id, wrong).attempts_remaining == 0
    assert provider.verify(pin_id, outbox[0].pin).pin_error == "NO_MORE_PIN_ATTEMPTS"


def test_expiry_and_single_verification(outbox, monkeypatch):
    provider = LocmemProvider(ttl_seconds=10)
    pin_id = provider.send(PHONE).pin_id
    assert provider.verify(pin_id, outbox[0].pin).verified is True
    assert provider.verify(pin_id, outbox[0].pin).pin_error == "NO_MORE_PIN_ATTEMPTS"
    pin_id = provider.send(PHONE).pin_id
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 11)
    assert provider.verify(pin_id, outbox[1].pin).pin_error == "TTL_EXPIRED"


def test_unknown_pin_id(outbox):
    with pytest.raises(PinNotFound):
        LocmemProvider().verify("NOPE", "123456")


def test_no_pin_is_stored(outbox):
    provider = LocmemProvider()
    pin_id = provider.send(PHONE).pin_id
    stored = vars(LocmemProvider._pins[pin_id])
    assert outbox[0].pin not in repr(stored) and set(stored) == {
        "phone",
        "length",
        "expires_at",
        "attempts_left",
        "verified",
    }


def test_resend_delivers_the_same_pin(outbox):
    provider = LocmemProvider()
    pin_id = provider.send(PHONE).pin_id
    assert provider.resend(pin_id).pin_id == pin_id
    assert outbox[0].pin == outbox[1].pin and outbox[1].pin_id == pin_id
    assert provider.verify(pin_id, outbox[1].pin).verified is True
    with pytest.raises(PinNotFound):
        provider.resend(pin_id)  # verified: nothing left to resend
    with pytest.raises(PinNotFound):
        provider.resend("UNKNOWN")


def test_fail_next_send(outbox):
    locmem.fail_next_send(ValueError("x"))
    with pytest.raises(ValueError):
        LocmemProvider().send(PHONE)
    LocmemProvider().send(PHONE)
    assert len(outbox) == 1


def test_development_provider_logs_the_sms(settings, caplog):
    settings.DEBUG = True
    caplog.set_level(logging.WARNING, logger="otp.development_sms")
    provider = DevelopmentProvider()
    pin_id = provider.send(PHONE).pin_id
    (record,) = caplog.records
    assert "Your verification code is" in record.getMessage()
    assert PHONE not in record.getMessage() and "2671" in record.getMessage()
    pin = record.getMessage().rsplit(" ", 1)[-1]
    assert provider.verify(pin_id, pin).verified is True


def test_development_provider_refused_at_runtime_without_debug(settings):
    settings.DEBUG = False
    settings.OTP = {"PROVIDER": "otp.providers.development.DevelopmentProvider"}
    with pytest.raises(OtpConfigurationError):
        get_provider()


def test_provider_instance_is_reused(settings):
    settings.OTP = {"PROVIDER": "otp.providers.locmem.LocmemProvider"}
    assert get_provider() is get_provider()
    settings.OTP = {"PROVIDER": "otp.providers.locmem.LocmemProvider", "PROVIDER_OPTIONS": {"pin_length": 8}}
    provider = get_provider()
    assert isinstance(provider, LocmemProvider) and provider.pin_length == 8
