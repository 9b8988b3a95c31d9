"""Integration hooks: purposes, channels, the verification token and its permission, signals."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from otp import services, signals, tokens
from otp.exceptions import InvalidInput, OtpConfigurationError, VerificationFailed
from otp.models import OtpAttempt, VerificationTokenUse
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

PIN_URL = "https://xyz.api.infobip.com/2fa/2/pin"


def verify(otp_api, pin, **extra):
    return otp_api.post("/verify-otp", {"phoneNumber": PHONE, "pin": pin, **extra})


# -- purpose ----------------------------------------------------------------------


def test_a_code_verifies_only_for_its_purpose(otp_api, outbox):
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "purpose": "signup"}).status_code == 200
    assert verify(otp_api, outbox[0].pin).status_code == 401  # default purpose
    assert verify(otp_api, outbox[0].pin, purpose="login").status_code == 401
    response = verify(otp_api, outbox[0].pin, purpose="signup")
    assert response.status_code == 200
    assert tokens.read_token(response.json()["verificationToken"]).purpose == "signup"


def test_purposes_do_not_supersede_each_other(outbox):
    services.send_code(PHONE, purpose="login")
    services.send_code(PHONE, purpose="phone_change")
    assert services.verify_code(PHONE, outbox[0].pin, purpose="login").purpose == "login"
    assert services.verify_code(PHONE, outbox[1].pin, purpose="phone_change").purpose == "phone_change"


@pytest.mark.parametrize("purpose", ["", "Login", "a" * 33, "log in", 7, ["login"]])
def test_bad_purpose(otp_api, outbox, purpose):
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE, "purpose": purpose})
    assert response.status_code == 400 and outbox == []


def test_purpose_allowlist(otp_api, outbox, settings):
    settings.OTP = {**settings.OTP, "PURPOSES": ["login", "signup"]}
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "purpose": "admin"}).status_code == 400
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "purpose": "login"}).status_code == 200
    with pytest.raises(InvalidInput):
        services.verify_code(PHONE, outbox[0].pin, purpose="admin")


# -- channel ------------------------------------------------------------------------


def test_voice_channel_through_the_api(otp_api, outbox):
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "channel": "voice"}).status_code == 200
    assert outbox[0].channel == "voice" and OtpAttempt.objects.get().channel == "voice"


@pytest.mark.parametrize("channel", ["email", "SMS", "", 1])
def test_bad_channel(otp_api, outbox, channel):
    assert otp_api.post("/send-otp", {"phoneNumber": PHONE, "channel": channel}).status_code == 400


def test_channels_setting(otp_api, outbox, settings):
    settings.OTP = {**settings.OTP, "CHANNELS": ("sms",)}
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE, "channel": "voice"})
    assert response.status_code == 400 and response.json()["error"] == "channel must be one of 'sms'."


def test_infobip_voice_send_and_voice_resend_of_an_sms_pin(infobip):
    infobip.post(PIN_URL, json={"pinId": "P1", "smsStatus": "MESSAGE_SENT"})
    infobip.post(f"{PIN_URL}/P1/resend/voice", json={"pinId": "P1", "callStatus": "PENDING_ACCEPTED"})
    infobip.post(f"{PIN_URL}/voice", json={"pinId": "P2", "callStatus": "PENDING_ACCEPTED"})
    services.send_code(PHONE)
    attempt = services.resend_code(PHONE, channel="voice")
    assert attempt.pin_id == "P1"
    services.send_code("+14155550123", channel="voice")
    urls = [call.request.url for call in infobip.calls]
    assert urls == [PIN_URL, f"{PIN_URL}/P1/resend/voice", f"{PIN_URL}/voice"]
    assert json.loads(infobip.calls[2].request.body)["to"] == "14155550123"


# -- the verification token --------------------------------------------------------


def test_token_proves_the_phone_to_another_view(otp_api, api, outbox):
    otp_api.post("/send-otp", {"phoneNumber": PHONE, "purpose": "phone_change"})
    token = verify(otp_api, outbox[0].pin, purpose="phone_change").json()["verificationToken"]
    response = api.post("/protected", {}, format="json", HTTP_X_VERIFICATION_TOKEN=token)
    assert response.status_code == 200 and response.json() == {"phone": PHONE}
    # In the body instead of the header.
    token = tokens.make_token(PHONE, "phone_change")
    response = api.post("/protected", {"verificationToken": token}, format="json")
    assert response.status_code == 200


def test_a_token_is_accepted_once(otp_api, api, outbox):
    otp_api.post("/send-otp", {"phoneNumber": PHONE, "purpose": "phone_change"})
    token = verify(otp_api, outbox[0].pin, purpose="phone_change").json()["verificationToken"]
    assert api.post("/protected", {}, format="json", HTTP_X_VERIFICATION_TOKEN=token).status_code == 200
    assert api.post("/protected", {}, format="json", HTTP_X_VERIFICATION_TOKEN=token).status_code == 403
    assert api.post("/protected", {"verificationToken": token}, format="json").status_code == 403


def test_read_token_consumes_only_when_asked():
    token = tokens.make_token(PHONE, "login")
    assert tokens.read_token(token).phone == PHONE
    assert tokens.read_token(token).phone == PHONE  # only checked
    assert tokens.read_token(token, consume=True).phone == PHONE
    for consume in (True, False):
        with pytest.raises(tokens.InvalidToken, match="already used"):
            tokens.read_token(token, consume=consume)
    # Another token for the same phone and purpose is still good.
    assert tokens.read_token(tokens.make_token(PHONE, "login"), consume=True).phone == PHONE


def test_tokens_issued_in_the_same_second_differ():
    with time_machine.travel(timezone.now(), tick=False):
        first, second = tokens.make_token(PHONE, "login"), tokens.make_token(PHONE, "login")
        assert first != second
        tokens.read_token(first, consume=True)
        assert tokens.read_token(second, consume=True).phone == PHONE


def test_a_token_without_an_id_is_refused():
    from django.core import signing

    old_style = signing.dumps({"phone": PHONE, "purpose": "login"}, salt=tokens.SALT, compress=False)
    with pytest.raises(tokens.InvalidToken):
        tokens.read_token(old_style)


def test_single_use_can_be_turned_off(api, settings):
    settings.OTP = {**settings.OTP, "VERIFICATION_TOKEN_SINGLE_USE": False}
    token = tokens.make_token(PHONE, "phone_change")
    for _ in range(3):
        assert api.post("/protected", {}, format="json", HTTP_X_VERIFICATION_TOKEN=token).status_code == 200
        assert tokens.read_token(token, consume=True).phone == PHONE
    assert not VerificationTokenUse.objects.exists()


def test_a_token_use_is_remembered_until_the_token_expires():
    with time_machine.travel(timezone.now(), tick=False):
        tokens.read_token(tokens.make_token(PHONE, "login"), consume=True)
        use = VerificationTokenUse.objects.get()
        assert use.expires_at == timezone.now() + timedelta(seconds=600)


def test_a_refused_token_is_not_recorded_as_used(api):
    token = tokens.make_token(PHONE, "login")  # the view wants phone_change
    assert api.post("/protected", {}, format="json", HTTP_X_VERIFICATION_TOKEN=token).status_code == 403
    assert not VerificationTokenUse.objects.exists()
    assert tokens.read_token(token, consume=True).purpose == "login"


def test_a_bare_phone_verified_is_deprecated(api):
    token = tokens.make_token(PHONE, "login")
    with pytest.warns(DeprecationWarning, match="for_purpose"):
        response = api.post("/protected-any-purpose", {}, format="json", HTTP_X_VERIFICATION_TOKEN=token)
    assert response.status_code == 200 and response.json() == {"phone": PHONE}


def test_an_unset_token_lifetime_fails_closed(settings):
    token = tokens.make_token(PHONE, "login")
    settings.OTP = {**settings.OTP, "VERIFICATION_TOKEN_MAX_AGE_SECONDS": None}
    with pytest.raises(OtpConfigurationError):
        tokens.read_token(token)


def test_token_refusals(api, outbox):
    other_purpose = tokens.make_token(PHONE, "login")
    good = tokens.make_token(PHONE, "phone_change")
    # One character of the signature changed (not the last: it may carry only padding bits).
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    for token in (None, "", "garbage", other_purpose, tampered):
        headers = {} if token is None else {"HTTP_X_VERIFICATION_TOKEN": token}
        assert api.post("/protected", {}, format="json", **headers).status_code == 403
    with time_machine.travel(timezone.now() + timedelta(seconds=601)):
        assert api.post("/protected", {}, format="json", HTTP_X_VERIFICATION_TOKEN=good).status_code == 403


def test_tokens_are_bound_to_the_secret_key(settings):
    token = tokens.make_token(PHONE, "login")
    settings.SECRET_KEY = "another-secret"
    with pytest.raises(tokens.InvalidToken):
        tokens.read_token(token)


# -- signals --------------------------------------------------------------------------


@pytest.fixture
def received():
    log: list[tuple[str, dict]] = []
    handlers = {}
    for name in ("code_sent", "phone_verified", "verification_failed", "send_blocked"):

        def handler(sender, _name=name, **kwargs):
            kwargs.pop("signal", None)
            log.append((_name, kwargs))

        handlers[name] = handler
        getattr(signals, name).connect(handler)
    yield log
    for name, handler in handlers.items():
        getattr(signals, name).disconnect(handler)


def test_signals_with_their_arguments(outbox, received, settings):
    attempt = services.send_code(PHONE, purpose="login")
    services.resend_code(PHONE, purpose="login", channel="voice")
    with pytest.raises(VerificationFailed):
        services.verify_code(PHONE, "000000" if outbox[0].pin != "000000" else "111111", purpose="login")
    services.verify_code(PHONE, outbox[0].pin, purpose="login")
    settings.OTP = {**settings.OTP, "ALLOWED_REGIONS": ["GB"]}
    with pytest.raises(InvalidInput):
        services.send_code(PHONE, purpose="login")
    names = [name for name, _ in received]
    assert names == ["code_sent", "code_sent", "verification_failed", "phone_verified", "send_blocked"]
    sent, resent, failed, verified, blocked = (kwargs for _, kwargs in received)
    assert (sent["attempt"].pk, sent["phone"], sent["purpose"], sent["channel"], sent["resend"]) == (
        attempt.pk,
        PHONE,
        "login",
        "sms",
        False,
    )
    assert (resent["channel"], resent["resend"]) == ("voice", True)
    assert (failed["phone"], failed["purpose"], failed["reason"]) == (PHONE, "login", "wrong_pin")
    assert (verified["attempt"].pk, verified["purpose"], verified["user"]) == (attempt.pk, "login", None)
    assert (blocked["phone"], blocked["reason"]) == (PHONE, "destination_region")


# -- the fixture offered to sites ------------------------------------------------------


def test_otp_outbox_fixture_switches_to_the_memory_provider(request, settings, otp_api):
    settings.OTP = {**settings.OTP, "PROVIDER": "otp.providers.infobip.InfobipProvider", "PIN_LENGTH": 8}
    outbox = request.getfixturevalue("otp_outbox")
    # A site's own OTP settings are kept; only the provider changes.
    assert settings.OTP["PROVIDER"] == "otp.providers.locmem.LocmemProvider" and settings.OTP["PIN_LENGTH"] == 8
    assert otp_api.send().status_code == 200
    assert [m.phone for m in outbox] == [PHONE] and len(outbox[0].pin) == 8
