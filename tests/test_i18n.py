"""Messages follow Accept-Language; with none, the English bodies are byte for byte as before."""

from __future__ import annotations

import pytest

from tests.conftest import PHONE

pytestmark = pytest.mark.django_db


def test_no_accept_language_keeps_the_english_bytes(otp_api, outbox):
    assert otp_api.send().content == b'{"message":"OTP sent successfully."}'
    response = otp_api.verify("000000" if outbox[0].pin != "000000" else "111111")
    assert response.content == b'{"error":"Invalid or expired OTP.","code":"invalid_or_expired"}'
    assert response.get("Content-Language", "en") == "en"


def test_spanish(otp_api, outbox):
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE}, HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")
    assert response.json() == {"message": "OTP enviado correctamente."}
    wrong = "000000" if outbox[0].pin != "000000" else "111111"
    response = otp_api.post("/verify-otp", {"phoneNumber": PHONE, "pin": wrong}, HTTP_ACCEPT_LANGUAGE="es")
    assert response.json() == {"error": "OTP no válido o caducado.", "code": "invalid_or_expired"}
    response = otp_api.post("/verify-otp", {"phoneNumber": PHONE, "pin": "12"}, HTTP_ACCEPT_LANGUAGE="es")
    assert response.json()["error"] == "pin debe tener exactamente 6 dígitos."
    response = otp_api.post("/send-otp", {}, HTTP_ACCEPT_LANGUAGE="es")
    assert response.json()["error"] == "phoneNumber es obligatorio."


def test_unsupported_language_falls_back_to_english(otp_api, outbox):
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE}, HTTP_ACCEPT_LANGUAGE="tlh")
    assert response.content == b'{"message":"OTP sent successfully."}'


def test_the_machine_code_never_changes_with_language(otp_api):
    english = otp_api.post("/send-otp", {"phoneNumber": "+1415"})
    spanish = otp_api.post("/send-otp", {"phoneNumber": "+1415"}, HTTP_ACCEPT_LANGUAGE="es")
    assert english.json()["code"] == spanish.json()["code"] == "invalid_phone_number"
    assert english.json()["error"] != spanish.json()["error"]
