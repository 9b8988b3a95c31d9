"""Origin-bound codes: the setting, its checks, message texts, channels, and the path through the emulator."""

from __future__ import annotations

import logging
import re

import pytest

from otp import webotp
from otp.checks import check_webotp_domain
from otp.conf import otp_settings
from otp.providers.development import DevelopmentProvider
from otp.providers.locmem import LocmemProvider
from tests.conftest import INFOBIP_BASE, PHONE

INFOBIP = "otp.providers.infobip.InfobipProvider"
PIN_URL = f"{INFOBIP_BASE}/2fa/2/pin"
PIN_ID = "9C817C6F8AF3D48F9FE553282AFA2B67"


@pytest.fixture
def domain(settings):
    settings.OTP = {**settings.OTP, "WEBOTP_DOMAIN": "example.com"}
    return "example.com"


# -- the setting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://example.com", "it has a scheme"),
        ("example.com:443", "it has a port"),
        ("example.com/verify", "it has a path"),
        ("example.com?x", "it has a path"),
        ("Example.com", "it is not lower case"),
        ("exämple.com", "xn-- form"),
        ("example.com.", "it is not a host name"),
        ("-example.com", "it is not a host name"),
        ("exa mple.com", "it is not a host name"),
        ("*.example.com", "it is not a host name"),
        ("a" * 64 + ".com", "it is not a host name"),
        (["example.com"], "it is not a string"),
    ],
)
def test_a_domain_that_is_not_a_bare_host_fails_the_check(settings, value, problem):
    settings.OTP = {**settings.OTP, "WEBOTP_DOMAIN": value}
    (error,) = check_webotp_domain()
    assert error.id == "otp.E047" and problem in error.msg and "not a bare host" in error.msg
    assert "without scheme, port or path" in str(error.hint)


@pytest.mark.parametrize("value", [None, "", "example.com", "login.example.co.uk", "localhost", "xn--exmple-cua.com"])
def test_bare_hosts_and_off_pass(settings, value):
    settings.OTP = {**settings.OTP, "WEBOTP_DOMAIN": value}
    assert check_webotp_domain() == []


def test_empty_reads_as_off(settings):
    settings.OTP = {**settings.OTP, "WEBOTP_DOMAIN": ""}
    assert otp_settings.WEBOTP_DOMAIN is None


def test_the_origin_line_helpers():
    text = webotp.origin_bound("Your code is below.  ", "example.com")
    assert text == "Your code is below.\n\n@example.com #{{pin}}"
    assert webotp.last_line(webotp.render(text, "123456") + "\r\n") == "@example.com #123456"
    assert webotp.origin_lines("a\n @x.example #1 @y.example\nb @x #1") == [" @x.example #1 @y.example"]


# -- the simulated providers ----------------------------------------------------------


def test_locmem_sms_carry_the_origin_line_and_calls_do_not(outbox, domain):
    provider = LocmemProvider()
    provider.send(PHONE)
    provider.send(PHONE, channel="voice")
    sms, call = outbox
    assert sms.text == f"Your verification code is below.\n\n@example.com #{sms.pin}"
    assert call.text == f"Your verification code is {call.pin}" and webotp.origin_lines(call.text) == []


def test_locmem_sms_are_plain_without_the_setting(outbox):
    LocmemProvider().send(PHONE)
    assert outbox[0].text == f"Your verification code is {outbox[0].pin}"


def test_the_console_shows_the_origin_line(settings, domain, caplog):
    settings.DEBUG = True
    caplog.set_level(logging.WARNING, logger="otp.development_sms")
    provider = DevelopmentProvider()
    pin_id = provider.send(PHONE).pin_id
    (record,) = caplog.records
    last = webotp.last_line(record.getMessage())
    assert re.fullmatch(r"@example\.com #\d{6}", last)
    assert provider.verify(pin_id, last.split("#")[1]).verified is True
