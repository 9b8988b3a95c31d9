"""Two gunicorn instances sharing one PostgreSQL database and one Redis."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

pytestmark = pytest.mark.postgres

IP_SEND_RATE = 4


def test_send_through_one_verify_through_the_other(start_site, emulator, e2e_database, new_phone):
    first, second = start_site(count=2)
    phone = new_phone()
    assert first.send(phone).status_code == 200
    response = second.verify(phone, emulator.pin(phone))
    assert response.status_code == 200, response.text
    assert e2e_database.attempts(phone)[0]["status"] == "verified"
    assert first.verify(phone, emulator.pin(phone)).status_code == 401  # used, whichever instance asks


def test_ip_and_phone_limits_are_shared(start_site, emulator, new_phone):
    limits = {"OTP_IP_SEND_RATE": f"{IP_SEND_RATE}/15m", "OTP_RESEND_COOLDOWN_SECONDS": "60"}
    first, second = start_site(count=2, **limits)
    phone = new_phone()
    # The phone's cooldown is a database row: the other instance sees it.
    assert first.send(phone).status_code == 200
    cooled = second.send(phone)
    assert cooled.status_code == 429 and cooled.json()["code"] == "rate_limited"
    assert int(cooled.headers["Retry-After"]) >= 60
    # The IP bucket is in Redis: the two sends above and two more, alternating, fill it.
    assert second.send(new_phone()).status_code == 200
    assert first.send(new_phone()).status_code == 200
    limited = second.send(new_phone())
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert first.send(new_phone()).status_code == 429
    assert emulator.calls("send") == 3


def test_parallel_verifies_of_the_right_pin_succeed_once(start_site, emulator, e2e_database, new_phone):
    # The emulated application allows repeated verifications, so "Infobip" says
    # verified to every request that reaches it; only the site can stop the replays.
    settings = {"OTP_MAX_VERIFY_ATTEMPTS": "10", "GUNICORN_THREADS": "16"}
    sites = start_site(count=2, **settings)
    phone = new_phone()
    assert sites[0].send(phone).status_code == 200
    pin = emulator.pin(phone)
    start = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def verify(index: int) -> None:
        start.wait(5)
        status = sites[index % 2].verify(phone, pin).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=verify, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert Counter(statuses) == Counter({200: 1, 401: 19}), Counter(statuses)
    (row,) = e2e_database.attempts(phone)
    assert row["status"] == "verified" and row["verified_at"] is not None
    # Slots are reserved before the provider is called: it never sees more than MAX_VERIFY_ATTEMPTS.
    assert 1 <= emulator.calls("verify") <= 10
