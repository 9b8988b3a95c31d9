"""Infobip's per-number limits, through a real gunicorn site: throttling one number stops nobody else.

Infobip answers 429 when one number's verifies exceed ``verifyPinLimit``. A
client guessing PINs on a few numbers from several addresses must not open
the site's circuit breaker for every user.
"""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.postgres

CIRCUIT_FAILURES = 3


@pytest.fixture
def throttling_emulator(emulator):
    """The emulator enforcing the application's verifyPinLimit (Infobip's default, 1 per 3 s per number)."""
    emulator.control("PUT", "limits", {"verify": True})
    try:
        yield emulator
    finally:
        emulator.control("PUT", "limits", {"verify": False})


def post(site, path: str, body: dict, client_ip: str) -> requests.Response:
    # One trusted proxy in front: the client's address is the last X-Forwarded-For entry.
    return requests.post(site.base + path, json=body, headers={"X-Forwarded-For": client_ip}, timeout=15)


def test_wrong_pins_on_throttled_numbers_leave_the_breaker_closed_for_everyone(
    start_site, throttling_emulator, new_phone
):
    site = start_site(OTP_CIRCUIT_FAILURES=str(CIRCUIT_FAILURES), OTP_TRUSTED_PROXY_COUNT="1")
    targets, bystander = new_phone.many(2), new_phone()
    for phone in targets:
        assert post(site, "/send-otp", {"phoneNumber": phone}, "198.51.100.1").status_code == 200
    answers = []
    for guess in range(4):
        for index, phone in enumerate(targets):
            wrong = f"{(int(throttling_emulator.pin(phone)) + 1 + guess) % 10**6:06d}"
            response = post(site, "/verify-otp", {"phoneNumber": phone, "pin": wrong}, f"203.0.113.{guess * 2 + index}")
            answers.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["code"] == "rate_limited" and int(response.headers["Retry-After"]) >= 3
    assert answers.count(429) >= 2 * CIRCUIT_FAILURES  # Infobip throttled them, more often than the breaker allows
    assert set(answers) == {401, 429}
    assert site.health()["provider_circuit"] == "closed"
    assert post(site, "/send-otp", {"phoneNumber": bystander}, "192.0.2.7").status_code == 200
    pin = throttling_emulator.pin(bystander)
    assert post(site, "/verify-otp", {"phoneNumber": bystander, "pin": pin}, "192.0.2.7").status_code == 200
