"""Origin-bound codes: the setting, its checks, message texts, channels, and the path through the emulator."""

from __future__ import annotations

import json
import logging
import re
from io import StringIO

import pytest
from django.core.management import call_command

from otp import services
from otp.checks import check_provider, check_webotp_domain
from otp.conf import otp_settings
from otp.emulator import running_emulator
from otp.models import AttemptStatus, OtpAttempt
from otp.providers import webotp
from otp.providers.development import DevelopmentProvider
from otp.providers.infobip import InfobipProvider
from otp.providers.locmem import LocmemProvider
from tests.conftest import INFOBIP_BASE, INFOBIP_OPTIONS, PHONE, infobip_http

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


@pytest.mark.parametrize(
    ("overrides", "warned"),
    [
        ({}, True),
        ({"CHANNELS": ("sms",)}, False),
        ({"PROVIDER_OPTIONS": {**INFOBIP_OPTIONS, "voice_message_id": "VOICE-1"}}, False),
        ({"WEBOTP_DOMAIN": None}, False),
    ],
)
def test_voice_without_a_voice_template_is_warned(settings, overrides, warned):
    settings.OTP = {
        "PROVIDER": INFOBIP,
        "PROVIDER_OPTIONS": dict(INFOBIP_OPTIONS),
        "WEBOTP_DOMAIN": "example.com",
        **overrides,
    }
    messages = check_provider()
    assert [m.id for m in messages] == (["otp.W015"] if warned else [])
    if warned:
        assert "text-to-speech reads out" in messages[0].msg and "INFOBIP_2FA_VOICE_MSG_ID" in str(messages[0].hint)


# -- the Infobip provider -----------------------------------------------------------


def test_infobip_calls_use_the_voice_template_and_sms_the_sms_one():
    provider = InfobipProvider(**INFOBIP_OPTIONS, voice_message_id="VOICE-1")
    with infobip_http() as http:
        http.post(PIN_URL, json={"pinId": "P1", "smsStatus": "MESSAGE_SENT"})
        http.post(f"{PIN_URL}/voice", json={"pinId": "P2", "callStatus": "PENDING_ACCEPTED"})
        provider.send(PHONE)
        provider.send(PHONE, channel="voice")
        bodies = [json.loads(call.request.body or "") for call in http.calls]
    assert [body["messageId"] for body in bodies] == ["MSG-ID-1", "VOICE-1"]


def test_infobip_calls_read_the_sms_template_without_a_voice_one():
    provider = InfobipProvider(**INFOBIP_OPTIONS)
    with infobip_http() as http:
        http.post(f"{PIN_URL}/voice", json={"pinId": "P2", "callStatus": "PENDING_ACCEPTED"})
        provider.send(PHONE, channel="voice")
        assert json.loads(http.calls[0].request.body or "")["messageId"] == "MSG-ID-1"


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


# -- resending by the other channel -----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("first", "then"), [("sms", "voice"), ("voice", "sms")])
def test_a_resend_by_the_other_channel_is_a_new_pin(outbox, domain, first, then):
    old = services.send_code(PHONE, channel=first)
    new = services.resend_code(PHONE, channel=then)
    assert new.pk != old.pk and new.channel == then
    assert [m.channel for m in outbox] == [first, then] and outbox[0].pin_id != outbox[1].pin_id
    assert OtpAttempt.objects.get(pk=old.pk).status == AttemptStatus.SUPERSEDED
    assert (webotp.origin_lines(outbox[-1].text) != []) == (then == "sms")
    assert services.verify_code(PHONE, outbox[1].pin).pk == new.pk


@pytest.mark.django_db
def test_a_resend_by_the_same_channel_keeps_the_pin(outbox, domain):
    attempt = services.send_code(PHONE)
    assert services.resend_code(PHONE).pk == attempt.pk
    assert outbox[0].pin_id == outbox[1].pin_id and outbox[1].text == outbox[0].text


@pytest.mark.django_db
def test_without_the_setting_a_call_reads_out_the_sms_pin(outbox):
    attempt = services.send_code(PHONE)
    assert services.resend_code(PHONE, channel="voice").pk == attempt.pk
    assert outbox[1].channel == "voice" and outbox[0].pin_id == outbox[1].pin_id


@pytest.mark.django_db
def test_a_voice_resend_of_an_sms_pin_never_reaches_infobips_resend(infobip, domain, settings):
    settings.OTP["PROVIDER_OPTIONS"]["voice_message_id"] = "VOICE-1"
    infobip.post(PIN_URL, json={"pinId": "P1", "smsStatus": "MESSAGE_SENT"})
    infobip.post(f"{PIN_URL}/voice", json={"pinId": "P2", "callStatus": "PENDING_ACCEPTED"})
    services.send_code(PHONE)
    assert services.resend_code(PHONE, channel="voice").pin_id == "P2"
    assert [call.request.url for call in infobip.calls] == [PIN_URL, f"{PIN_URL}/voice"]
    assert json.loads(infobip.calls[1].request.body)["messageId"] == "VOICE-1"


# -- provisioning, sending and verifying through the emulator ----------------------------

EMULATOR_KEY = "webotp-emulator-key"


@pytest.mark.django_db
def test_provisioned_sms_end_with_the_origin_line_and_that_code_verifies(settings, otp_api, tmp_path):
    settings.OTP = {
        **settings.OTP,
        "PROVIDER": INFOBIP,
        "PROVIDER_OPTIONS": {"api_key": EMULATOR_KEY, "base_url": "unused.example"},
        "WEBOTP_DOMAIN": "example.com",
    }
    env = tmp_path / ".env"
    with running_emulator(api_key=EMULATOR_KEY) as server:
        out = StringIO()
        call_command("otp_provision", "--base-url", server.base_url, "--write-env", str(env), stdout=out)
        ids = dict(line.split("=", 1) for line in env.read_text().splitlines())
        assert set(ids) == {"INFOBIP_2FA_APP_ID", "INFOBIP_2FA_MSG_ID", "INFOBIP_2FA_VOICE_MSG_ID"}
        call_command("otp_provision", "--base-url", server.base_url, "--check", stdout=StringIO())
        settings.OTP["PROVIDER_OPTIONS"] = {
            "api_key": EMULATOR_KEY,
            "base_url": server.base_url,
            "application_id": ids["INFOBIP_2FA_APP_ID"],
            "message_id": ids["INFOBIP_2FA_MSG_ID"],
            "voice_message_id": ids["INFOBIP_2FA_VOICE_MSG_ID"],
        }
        assert check_provider() == []

        assert otp_api.send().status_code == 200
        sms = server.emulator.last_pin(PHONE)
        assert sms is not None and sms.channel == "sms"
        assert sms.text.splitlines()[0] == "Your verification code is below."
        last = webotp.last_line(sms.text)
        assert last == f"@example.com #{sms.pin}"
        # What a browser does: take the code from the last line, for this host only.
        match = re.fullmatch(r"@(\S+) #(\S+)", last)
        assert match is not None and match[1] == "example.com"
        assert otp_api.verify(match[2]).status_code == 200

        assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "channel": "voice"}).status_code == 200
        call = server.emulator.last_pin(PHONE)
        assert call is not None and call.message_id == ids["INFOBIP_2FA_VOICE_MSG_ID"]
        assert call.text == f"Your verification code is {call.pin}"
