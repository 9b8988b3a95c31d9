"""Send and verify through gunicorn, the Infobip provider over HTTP and the emulator."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres


def test_send_read_pin_verify(start_site, emulator, e2e_database, new_phone):
    site = start_site()
    phone = new_phone()

    sent = site.send(phone, request_id="e2e-happy-send")
    assert sent.status_code == 200 and sent.json() == {"message": "OTP sent successfully."}
    assert sent.headers["X-Request-ID"] == "e2e-happy-send"
    pin = emulator.pin(phone)  # read back through the control API
    assert emulator.calls("send") == 1 and emulator.stats()["smsSent"] == 1

    wrong = "0" * len(pin) if pin != "0" * len(pin) else "1" * len(pin)
    bad = site.verify(phone, wrong)
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_or_expired"
    good = site.verify(phone, pin)
    assert good.status_code == 200 and good.json()["message"] == "OTP verified successfully."
    again = site.verify(phone, pin)
    assert again.status_code == 401  # one success per attempt
    assert emulator.calls("verify") == 2  # the replay is refused before the provider

    (row,) = e2e_database.attempts(phone)
    assert row["status"] == "verified" and row["verified_at"] is not None
    assert row["pin_id"] and row["failed_verifies"] == 1

    # The access records and security events share the request id; no PIN is logged.
    events = {r.get("event") for r in site.events("e2e-happy-send")}
    assert {"otp_send_requested", "otp_send_accepted"} <= events
    assert pin not in site.log_path.read_text() and phone not in site.log_path.read_text()
