"""Upstream faults from the emulator's switches, seen through a real gunicorn site.

Every case checks what the client gets (status, JSON body, time), how many
requests reached the emulator, what the site logged and what the database
holds afterwards.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.e2e.conftest import assert_unavailable

pytestmark = pytest.mark.postgres

READ_TIMEOUT = 1.0
CIRCUIT_FAILURES = 3
CIRCUIT_OPEN_SECONDS = 2


@pytest.fixture(scope="module")
def site(launch):
    """One site for the module; every test starts from empty tables, Redis and emulator state."""
    instance = launch(
        "provider-faults",
        INFOBIP_READ_TIMEOUT=str(READ_TIMEOUT),
        INFOBIP_CONNECT_TIMEOUT="1",
        OTP_CIRCUIT_FAILURES=str(CIRCUIT_FAILURES),
        OTP_CIRCUIT_OPEN_SECONDS=str(CIRCUIT_OPEN_SECONDS),
    )
    yield instance
    instance.stop()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def provider_error(site, request_id):
    (event,) = [r for r in site.events(request_id) if r.get("event") == "otp_provider_error"]
    return event


def access_record(site, request_id):
    (record,) = [r for r in site.events(request_id) if r.get("logger") == "otp.request"]
    return record


# -- sends --------------------------------------------------------------------------


def test_read_timeout_answers_503_in_time_without_retry(site, emulator, e2e_database, new_phone, measure):
    phone = new_phone()
    emulator.fault("hang", route="send")
    response, elapsed = timed(lambda: site.send(phone, request_id="e2e-hang"))
    assert_unavailable(response)
    measure("hang_503_seconds", elapsed)
    assert READ_TIMEOUT - 0.05 <= elapsed < READ_TIMEOUT + 0.75, elapsed
    assert emulator.calls("send") == 1  # never retried: a repeated send is a second SMS
    (row,) = e2e_database.attempts(phone)
    assert row["status"] == "failed" and row["pin_id"] is None
    event = provider_error(site, "e2e-hang")
    assert event["operation"] == "send" and event["phone"] == "+1********" + phone[-2:]
    assert access_record(site, "e2e-hang")["status"] == 503


def test_read_timeout_is_logged_as_a_timeout(site, emulator, new_phone):
    emulator.fault("hang", route="send")
    assert_unavailable(site.send(new_phone(), request_id="e2e-hang-log"))
    assert "timed out" in provider_error(site, "e2e-hang-log")["detail"]


@pytest.mark.parametrize(
    ("fault", "sms_out"),
    [
        ({"kind": "error", "status": 500}, 0),
        ({"kind": "error", "status": 503}, 0),
        ({"kind": "reset"}, 1),  # handled upstream, then the connection is reset
        ({"kind": "html"}, 1),
        ({"kind": "empty"}, 1),
        ({"kind": "malformed"}, 1),
    ],
)
def test_send_fault_answers_503_and_fails_the_attempt(site, emulator, e2e_database, new_phone, measure, fault, sms_out):
    phone = new_phone()
    emulator.fault(route="send", **fault)
    request_id = f"e2e-send-{fault['kind']}-{fault.get('status', 0)}"
    response, elapsed = timed(lambda: site.send(phone, request_id=request_id))
    assert_unavailable(response)
    measure("send_fault_503_seconds", elapsed)
    assert elapsed < 1.0
    assert emulator.calls("send") == 1 and emulator.stats()["smsSent"] == sms_out
    (row,) = e2e_database.attempts(phone)
    assert row["status"] == "failed" and row["pin_id"] is None  # never verifiable
    assert provider_error(site, request_id)["error"] == "ProviderUnavailable"
    # The fault fired once; the next send goes through.
    assert site.send(phone).status_code == 200


def test_rate_limited_upstream_passes_retry_after_on(site, emulator, e2e_database, new_phone):
    phone = new_phone()
    emulator.fault("rate_limit", route="send", retry_after=120)
    response = site.send(phone, request_id="e2e-429")
    assert_unavailable(response)
    assert int(response.headers["Retry-After"]) >= 120
    assert emulator.calls("send") == 1 and emulator.stats()["smsSent"] == 0
    assert e2e_database.attempts(phone)[0]["status"] == "failed"
    (throttled,) = [r for r in site.events("e2e-429") if r.get("event") == "otp_provider_throttled"]
    assert throttled["operation"] == "send" and throttled["retry_after"] >= 120
    # The phone waits out Infobip's Retry-After: a retry now never reaches Infobip.
    again = site.send(phone)
    assert again.status_code == 429 and int(again.headers["Retry-After"]) >= 60
    assert emulator.calls("send") == 1


def test_redirect_is_not_followed(site, emulator, e2e_database, new_phone, trap):
    phone = new_phone()
    emulator.fault("redirect", route="send", location=f"http://127.0.0.1:{trap.port}/2fa/2/pin")
    response = site.send(phone, request_id="e2e-redirect")
    assert_unavailable(response)
    time.sleep(0.2)
    assert trap.connections == 0  # the Authorization header never travelled
    assert emulator.calls("send") == 1 and emulator.stats()["smsSent"] == 0
    assert e2e_database.attempts(phone)[0]["status"] == "failed"
    assert "302" in provider_error(site, "e2e-redirect")["detail"]


# -- verifies -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["html", "empty", "malformed", "wrong_types", "mismatched_pin_id"])
def test_bad_verify_answer_fails_closed(site, emulator, e2e_database, new_phone, measure, kind):
    phone = new_phone()
    assert site.send(phone).status_code == 200
    pin = emulator.pin(phone)
    emulator.fault(kind, route="verify")
    request_id = f"e2e-verify-{kind}"
    response, elapsed = timed(lambda: site.verify(phone, pin, request_id=request_id))
    assert_unavailable(response)  # the provider said "verified" in a shape we do not trust
    measure("verify_fault_503_seconds", elapsed)
    assert elapsed < 1.0
    assert emulator.calls("verify") == 1
    (row,) = e2e_database.attempts(phone)
    assert row["verified_at"] is None and row["status"] == "pending"
    event = provider_error(site, request_id)
    assert event["operation"] == "verify" and event["error"] == "ProviderUnavailable"
    # The attempt stays usable: once the provider answers properly, the PIN verifies.
    assert site.verify(phone, pin).status_code == 200
    assert e2e_database.attempts(phone)[0]["status"] == "verified"


# -- the circuit breaker ----------------------------------------------------------------


def test_circuit_opens_fails_fast_and_one_probe_closes_it(site, emulator, e2e_database, new_phone, measure):
    phones = new_phone.many(CIRCUIT_FAILURES + 6)
    emulator.fault("error", route="send", status=500, count=None)
    for phone in phones[:CIRCUIT_FAILURES]:
        assert_unavailable(site.send(phone))
    assert emulator.calls("send") == CIRCUIT_FAILURES
    opened_at = time.monotonic()

    # Reported, but the instance stays ready: Infobip's outage is every instance's.
    health = site.get("/healthz/ready")
    assert health.status_code == 200 and health.json()["provider_circuit"] == "open"
    assert health.json()["status"] == "degraded"

    # Open: no upstream call at all, and fast.
    response, elapsed = timed(lambda: site.send(phones[CIRCUIT_FAILURES], request_id="e2e-open"))
    assert_unavailable(response)
    measure("circuit_open_503_seconds", elapsed)
    assert elapsed < 0.5 and emulator.calls("send") == CIRCUIT_FAILURES
    assert e2e_database.attempts(phones[CIRCUIT_FAILURES])[0]["status"] == "failed"
    assert "circuit is open" in provider_error(site, "e2e-open")["detail"]
    assert [r.get("event") for r in site.records()].count("otp_provider_circuit_open") == 1

    # The upstream recovers, slowly; after the cool-off the circuit is half open.
    emulator.clear_faults()
    emulator.latency(500, route="send")
    while site.health()["provider_circuit"] != "half_open":
        assert time.monotonic() - opened_at < CIRCUIT_OPEN_SECONDS + 2
        time.sleep(0.05)
    assert time.monotonic() - opened_at >= CIRCUIT_OPEN_SECONDS - 0.1
    assert site.get("/healthz").status_code == 200

    # Four sends at once: exactly one probe reaches the provider.
    probes = phones[CIRCUIT_FAILURES + 1 : CIRCUIT_FAILURES + 5]
    results: dict[str, requests.Response] = {}
    threads = [threading.Thread(target=lambda p=p: results.__setitem__(p, site.send(p))) for p in probes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [200, 503, 503, 503]
    assert emulator.calls("send") == CIRCUIT_FAILURES + 1

    assert site.health()["provider_circuit"] == "closed"
    emulator.latency(0, route="send")
    assert site.send(phones[-1]).status_code == 200
    assert emulator.calls("send") == CIRCUIT_FAILURES + 2
    assert [r.get("event") for r in site.records()].count("otp_provider_circuit_closed") == 1
