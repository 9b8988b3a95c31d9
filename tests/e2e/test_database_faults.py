"""Database faults: PostgreSQL reached through a loopback proxy the test cuts, and a held row lock."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.e2e.conftest import assert_no_dead_connection_used, assert_unavailable, wait_until_serving

pytestmark = pytest.mark.postgres

POOL_TIMEOUT = 1.0
LOCK_TIMEOUT_MS = 500


def masked(phone: str) -> str:
    return "+1" + "*" * (len(phone) - 4) + phone[-2:]


def test_database_down_before_send_sends_no_sms(start_site, pg_proxy, emulator, e2e_database, new_phone, measure):
    site = start_site(db_port=pg_proxy.port, DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT))
    assert site.send(new_phone()).status_code == 200  # the pool holds live connections now
    emulator.plan.reset_counts()
    phone = new_phone()

    pg_proxy.cut()
    started = time.monotonic()
    response = site.send(phone, request_id="e2e-db-down")
    elapsed = time.monotonic() - started
    assert_unavailable(response, code="temporarily_unavailable")
    assert response.headers["Retry-After"] == "30"
    measure("db_down_503_seconds", elapsed)
    assert elapsed < POOL_TIMEOUT + 1.0, elapsed
    assert emulator.calls("send") == 0  # no SMS without a record of it
    events = site.events("e2e-db-down")
    assert "otp_database_error" in [e.get("event") for e in events]
    assert not any("exception" in e for e in events if e.get("event") == "otp_database_error")

    health = site.get("/healthz/ready")
    assert health.status_code == 503 and health.json()["database"] == "error"
    assert site.get("/healthz/live").status_code == 200

    pg_proxy.restore()
    errors = wait_until_serving(site, new_phone)
    measure("db_restored_failed_requests", len(errors))
    assert_no_dead_connection_used(errors)  # they are replaced at check-out
    assert site.get("/healthz").status_code == 200
    assert e2e_database.attempts(phone) == []  # the refused send left nothing behind


def test_database_lost_after_the_provider_accepted_logs_an_orphan(
    start_site, pg_proxy, emulator, e2e_database, new_phone, measure
):
    site = start_site(db_port=pg_proxy.port, DATABASE_POOL_TIMEOUT=str(POOL_TIMEOUT), INFOBIP_READ_TIMEOUT="3")
    phone = new_phone()
    emulator.latency(1000, route="send")
    result: dict[str, requests.Response] = {}
    sender = threading.Thread(target=lambda: result.setdefault("r", site.send(phone, request_id="e2e-orphan")))
    sender.start()
    deadline = time.monotonic() + 5
    while emulator.calls("send") < 1:  # the request is at "Infobip", which answers in 1 s
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pg_proxy.cut()
    sender.join(10)
    response = result["r"]

    assert_unavailable(response, code="temporarily_unavailable")  # not a 500, no traceback
    assert emulator.stats()["smsSent"] == 1  # the SMS is out
    orphan = site.wait_for_record(lambda r: r.get("event") == "otp_send_orphan")
    assert orphan["level"] == "ERROR" and orphan["request_id"] == "e2e-orphan"
    assert orphan["phone"] == masked(phone) and phone not in site.log_path.read_text()
    access = [r for r in site.events("e2e-orphan") if r.get("logger") == "otp.request"]
    assert [r["status"] for r in access] == [503]

    pg_proxy.restore()
    errors = wait_until_serving(site, new_phone)
    measure("orphan_restored_failed_requests", len(errors))
    assert_no_dead_connection_used(errors)
    (row,) = e2e_database.attempts(phone)
    assert row["id"] == orphan["attempt"]
    assert row["status"] == "sending" and row["pin_id"] is None  # the operator's reconciliation record
    emulator.latency(0, route="send")
    assert site.verify(phone, emulator.pin(phone)).status_code == 401  # it never verifies


def test_held_row_lock_fails_fast(start_site, emulator, e2e_database, new_phone, measure):
    site = start_site(DATABASE_LOCK_TIMEOUT_MS=str(LOCK_TIMEOUT_MS))
    phone = new_phone()
    with e2e_database.phone_row_locked(phone):
        started = time.monotonic()
        response = site.send(phone, request_id="e2e-lock")
        elapsed = time.monotonic() - started
    assert_unavailable(response, code="temporarily_unavailable")
    measure("lock_503_seconds", elapsed)
    assert LOCK_TIMEOUT_MS / 1000 - 0.05 <= elapsed < LOCK_TIMEOUT_MS / 1000 + 0.75, elapsed
    assert emulator.calls("send") == 0
    assert e2e_database.attempts(phone) == []
    (event,) = [e for e in site.events("e2e-lock") if e.get("event") == "otp_database_error"]
    assert event["error"] == "LockNotAvailable"
    assert site.send(phone).status_code == 200  # the lock is gone, so is the fault
