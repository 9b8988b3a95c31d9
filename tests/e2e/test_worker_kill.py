"""A gunicorn worker SIGKILLed while its send is at the provider: no phantom success."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

pytestmark = pytest.mark.postgres


def test_killed_worker_leaves_no_phantom_success(start_site, emulator, e2e_database, new_phone, measure):
    site = start_site(GUNICORN_WORKERS="1", INFOBIP_READ_TIMEOUT="5")
    (worker,) = site.wait_workers(1)
    phone = new_phone()
    emulator.latency(1500, route="send")
    outcome = {}

    def send() -> None:
        try:
            outcome["response"] = site.send(phone, timeout=10)
        except requests.RequestException as err:
            outcome["error"] = err

    client = threading.Thread(target=send)
    client.start()
    deadline = time.monotonic() + 5
    while emulator.calls("send") < 1:  # the send is in flight at "Infobip"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(worker, signal.SIGKILL)
    client.join(10)

    # The client gets no answer at all, certainly not a success.
    assert "response" not in outcome and isinstance(outcome["error"], requests.ConnectionError)

    # "Infobip" still delivers the SMS once its latency is over.
    deadline = time.monotonic() + 5
    while emulator.stats()["smsSent"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (row,) = e2e_database.attempts(phone)
    assert row["status"] in ("sending", "failed") and row["pin_id"] is None and row["verified_at"] is None

    # The master replaces the worker and the site serves again.
    started = time.monotonic()
    (replacement,) = site.wait_workers(1, exclude={worker})
    site.wait_ready()
    measure("worker_respawn_seconds", time.monotonic() - started)
    assert f"Worker (pid:{worker}) was sent SIGKILL" in site.log_path.read_text()
    assert replacement != worker
    emulator.latency(0, route="send")
    assert site.verify(phone, emulator.pin(phone)).status_code == 401  # the orphaned PIN never verifies
    other = new_phone()
    assert site.send(other).status_code == 200
    assert site.verify(other, emulator.pin(other)).status_code == 200
    assert e2e_database.attempts(phone)[0]["status"] in ("sending", "failed")
