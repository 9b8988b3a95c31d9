"""The wire contract of POST /send-otp and POST /verify-otp."""

from __future__ import annotations

import json

import pytest

from otp import tokens
from otp.models import AttemptStatus, OtpAttempt
from otp.providers import locmem
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

INVALID = {"error": "Invalid or expired OTP.", "code": "invalid_or_expired"}
NOT_INTERNATIONAL = "phoneNumber must be in international format, starting with + and the country code."


def test_send_then_verify(otp_api, outbox):
    response = otp_api.send()
    assert response.status_code == 200
    assert response.json() == {"message": "OTP sent successfully."}
    assert [m.phone for m in outbox] == [PHONE]
    response = otp_api.verify(outbox[0].pin)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"message", "verificationToken"} and body["message"] == "OTP verified successfully."
    assert tokens.read_token(body["verificationToken"]).phone == PHONE
    attempt = OtpAttempt.objects.get()
    assert attempt.status == AttemptStatus.VERIFIED and attempt.verified_at is not None


FULL_WIDTH = "\uff0b\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff12\uff16\uff17\uff11"  # +14155552671


@pytest.mark.parametrize(
    "formatted", ["+1 415 555 2671", "+1 (415) 555-2671", "+14155552671", "+1-415-555-2671", FULL_WIDTH]
)
def test_phone_formats_are_one_number(otp_api, outbox, formatted):
    assert otp_api.send(formatted).status_code == 200
    assert otp_api.verify(outbox[-1].pin, phone="+14155552671").status_code == 200
    assert OtpAttempt.objects.get().phone == PHONE


def test_default_region_allows_national_numbers(otp_api, outbox, settings):
    settings.OTP = {**settings.OTP, "DEFAULT_REGION": "US"}
    assert otp_api.send("(415) 555-2671").status_code == 200
    assert outbox[0].phone == PHONE


def test_trailing_slash_works_without_redirect(api, outbox):
    response = api.post("/send-otp/", {"phoneNumber": PHONE}, format="json")
    assert response.status_code == 200
    response = api.post("/verify-otp/", {"phoneNumber": PHONE, "pin": outbox[0].pin}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "phoneNumber is required."),
        ({"phoneNumber": None}, "phoneNumber is required."),
        ({"phoneNumber": ""}, "phoneNumber is required."),
        ({"phoneNumber": 14155552671}, "phoneNumber must be a string."),
        ({"phoneNumber": ["+14155552671"]}, "phoneNumber must be a string."),
        ({"phoneNumber": "4155552671"}, NOT_INTERNATIONAL),
        ({"phoneNumber": "+1415555267"}, "phoneNumber is not a valid phone number."),
        ({"phoneNumber": "+999123456789"}, "phoneNumber is not a valid phone number."),
        ({"phoneNumber": "hello"}, NOT_INTERNATIONAL),
        ({"phoneNumber": "+1415555267\r\nFAKE LOG"}, "phoneNumber is not a valid phone number."),
        ({"phoneNumber": "+1" + "4" * 80}, "phoneNumber is not a valid phone number."),
        ({"phoneNumber": PHONE, "extra": 1}, "Unknown field: extra."),
    ],
)
def test_send_bad_input(otp_api, outbox, body, message):
    response = otp_api.post("/send-otp", body)
    assert response.status_code == 400
    assert response.json()["error"] == message
    assert outbox == [] and not OtpAttempt.objects.exists()


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        (None, "pin is required."),
        ("", "pin must be exactly 6 digits."),
        ("12345", "pin must be exactly 6 digits."),
        ("1234567", "pin must be exactly 6 digits."),
        ("12a456", "pin must be exactly 6 digits."),
        (" 123456", "pin must be exactly 6 digits."),
        ("123456\n", "pin must be exactly 6 digits."),
        ("\u0661\u0662\u0663\u0664\u0665\u0666", "pin must be exactly 6 digits."),
        ("\uff11\uff12\uff13\uff14\uff15\uff16", "pin must be exactly 6 digits."),
        (123456, "pin must be a string."),
        (12345.6, "pin must be a string."),
        (True, "pin must be a string."),
    ],
)
def test_verify_bad_pin(otp_api, outbox, pin, message):
    otp_api.send()
    body = {"phoneNumber": PHONE} if pin is None else {"phoneNumber": PHONE, "pin": pin}
    response = otp_api.post("/verify-otp", body)
    assert response.status_code == 400 and response.json()["error"] == message
    assert OtpAttempt.objects.get().verify_slots_used == 0


def test_pin_length_follows_setting(otp_api, outbox, settings):
    settings.OTP = {**settings.OTP, "PIN_LENGTH": 8}
    otp_api.send()
    assert len(outbox[0].pin) == 8
    assert otp_api.verify(outbox[0].pin[:6]).json()["error"] == "pin must be exactly 8 digits."
    assert otp_api.verify(outbox[0].pin).status_code == 200


@pytest.mark.parametrize("raw", [b"not json", b'{"phoneNumber": ', b"\xff\xfe", b'{"a": NaN}'])
def test_body_not_json(api, raw):
    response = api.generic("POST", "/send-otp", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "Request body must be valid JSON.", "code": "invalid_json"}


@pytest.mark.parametrize("raw", [b"[]", b'"+14155552671"', b"42", b"null"])
def test_body_not_an_object(api, raw):
    response = api.generic("POST", "/send-otp", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "Request body must be a JSON object."


def test_wrong_content_type(api):
    response = api.post("/send-otp", {"phoneNumber": PHONE})  # multipart form
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_wrong_method(api, method):
    response = getattr(api, method)("/send-otp")
    assert response.status_code == 405 and "error" in response.json()


def test_body_too_large(api, outbox):
    body = json.dumps({"phoneNumber": PHONE, "pad": "x" * 5000})
    response = api.generic("POST", "/send-otp", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert outbox == []


def test_unknown_url_is_json_404(api):
    response = api.get("/no-such-page")
    assert response.status_code == 404
    assert response.json()["error"] == "Not found."


@pytest.mark.parametrize("case", ["wrong", "unknown", "used", "expired", "superseded", "exhausted"])
def test_every_verify_failure_looks_the_same(otp_api, outbox, settings, case):
    if case != "unknown":
        otp_api.send()
        pin = outbox[-1].pin
    wrong = "000000" if case == "unknown" or pin != "000000" else "111111"
    if case == "wrong":
        response = otp_api.verify(wrong)
    elif case == "unknown":
        response = otp_api.verify("123456")
    elif case == "used":
        otp_api.verify(pin)
        response = otp_api.verify(pin)
    elif case == "expired":
        OtpAttempt.objects.update(expires_at="2000-01-01T00:00:00Z")
        response = otp_api.verify(pin)
    elif case == "superseded":
        otp_api.send()
        response = otp_api.verify(pin)
    else:
        for _ in range(5):
            otp_api.verify(wrong)
        response = otp_api.verify(pin)
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers.get("Retry-After") is None


def test_responses_never_leak_pin_id_or_pin(otp_api, outbox):
    bodies = [
        otp_api.send().content,
        otp_api.verify("000000" if outbox[0].pin != "000000" else "111111").content,
        otp_api.verify(outbox[0].pin).content,
    ]
    for body in bodies:
        assert outbox[0].pin_id.encode() not in body and outbox[0].pin.encode() not in body
        assert set(json.loads(body)) <= {"message", "error", "code", "verificationToken"}


def test_undelivered_send_is_400_with_one_body(otp_api, infobip):
    for status in ({"smsStatus": "MESSAGE_NOT_SENT"}, {"ncStatus": "NC_DESTINATION_NOT_REACHABLE"}):
        infobip.post("https://xyz.api.infobip.com/2fa/2/pin", json={"pinId": "P" + "".join(status), **status})
        response = otp_api.send()
        infobip.reset()
        assert response.status_code == 400
        assert response.json() == {"error": "Unable to send a code to this number.", "code": "send_failed"}
    assert set(OtpAttempt.objects.values_list("status", flat=True)) == {AttemptStatus.FAILED}


@pytest.mark.parametrize(("status", "body"), [(500, "boom"), (401, "{}"), (403, "{}"), (429, "{}"), (200, "<html>")])
def test_provider_trouble_is_503(otp_api, infobip, caplog, status, body):
    infobip.post("https://xyz.api.infobip.com/2fa/2/pin", status=status, body=body)
    response = otp_api.send()
    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    assert "Traceback" not in response.content.decode()
    if status == 429:  # throttling, not breakage: a warning of its own
        assert any(getattr(r, "otp_event", {}).get("event") == "otp_provider_throttled" for r in caplog.records)
        return
    assert any(
        r.levelname == "ERROR" and "Infobip send answered" in r.getMessage() or "non-JSON" in r.getMessage()
        for r in caplog.records
    )
    assert OtpAttempt.objects.get().status == AttemptStatus.FAILED


def test_provider_429_sets_retry_after(otp_api, infobip):
    infobip.post("https://xyz.api.infobip.com/2fa/2/pin", status=429, headers={"Retry-After": "90"})
    response = otp_api.send()
    # At least the provider's wait, rounded up to whole minutes like every Retry-After.
    assert response.status_code == 503 and response.headers["Retry-After"] == "120"


def test_unexpected_error_is_json_500_without_trace(otp_api, caplog):
    locmem.fail_next_send(RuntimeError("bug with secret details"))
    response = otp_api.send()
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error.", "code": "server_error"}
    assert "secret details" not in response.content.decode()
    assert "Traceback" in caplog.text  # the server log keeps it


def test_misconfigured_provider_is_503(otp_api, settings):
    settings.OTP = {**settings.OTP, "PROVIDER": "otp.providers.development.DevelopmentProvider"}
    response = otp_api.send()
    assert response.status_code == 503 and response.json()["code"] == "provider_unavailable"


def test_authenticated_user_is_recorded(api, outbox, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw")
    api.force_authenticate(user)
    assert api.post("/send-otp", {"phoneNumber": PHONE}, format="json").status_code == 200
    assert OtpAttempt.objects.get().user == user


def test_site_atomic_requests_do_not_hide_the_row(otp_api, settings, outbox):
    settings.DATABASES["default"]["ATOMIC_REQUESTS"] = True
    try:
        assert otp_api.send().status_code == 200
    finally:
        settings.DATABASES["default"]["ATOMIC_REQUESTS"] = False
    assert OtpAttempt.objects.get().status == AttemptStatus.PENDING
