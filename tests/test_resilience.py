"""Provider and database faults: circuit breaker, bulkhead, fail-closed answers, health, logs."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from django.utils import timezone

from otp import services
from otp.logs import JsonFormatter
from otp.models import AttemptStatus, OtpAttempt, PhoneState
from otp.providers import calls as provider_calls
from otp.providers import circuit
from tests.conftest import PHONE

pytestmark = pytest.mark.django_db

PIN_URL = "https://xyz.api.infobip.com/2fa/2/pin"
UNAVAILABLE = "The verification service is temporarily unavailable. Please try again later."


def numbers(count: int) -> list[str]:
    return [f"+1415{200 + i:03d}{1000 + i:04d}" for i in range(count)]


def send_calls(mock) -> int:
    return sum(1 for call in mock.calls if call.request.url.endswith("/2fa/2/pin"))


REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def shared_redis(settings):
    """The circuit and the IP limiter in one Redis cache."""
    import redis
    from django.core.cache import caches

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    settings.CACHES = {
        "default": {"BACKEND": "otp.cache.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "otp-circuit-test"}
    }
    settings.OTP = {**settings.OTP, "IP_SEND_RATE": "1000/m", "IP_VERIFY_RATE": "1000/m"}
    yield caches["default"]
    caches["default"].clear()


@pytest.fixture(params=["locmem", "redis"])
def breaker_cache(request):
    """The circuit's cache: the tests' locmem, or Redis shared with the IP limiter."""
    if request.param == "redis":
        request.getfixturevalue("shared_redis")
    return request.param


def test_circuit_opens_fails_fast_then_probes_and_closes(otp_api, infobip, settings, caplog, breaker_cache):
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 3, "CIRCUIT_OPEN_SECONDS": 30}
    caplog.set_level(logging.INFO, logger="otp.security")
    infobip.post(PIN_URL, status=500)
    phones = numbers(6)
    for phone in phones[:3]:
        assert otp_api.send(phone).status_code == 503
    assert circuit.state() == circuit.OPEN
    started = time.monotonic()
    response = otp_api.send(phones[3])
    assert response.status_code == 503 and response.json()["error"] == UNAVAILABLE
    assert time.monotonic() - started < 0.5 and send_calls(infobip) == 3  # no upstream call
    assert OtpAttempt.objects.filter(status=AttemptStatus.FAILED).count() == 4
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        assert circuit.state() == circuit.HALF_OPEN
        infobip.remove("POST", PIN_URL)
        pin_ids = iter(["PROBE-1", "PROBE-2"])
        infobip.add_callback("POST", PIN_URL, callback=lambda request: (200, {}, json.dumps({"pinId": next(pin_ids)})))
        assert otp_api.send(phones[4]).status_code == 200  # the probe
        assert circuit.state() == circuit.CLOSED
        assert otp_api.send(phones[5]).status_code == 200
    names = [getattr(r, "otp_event", {}).get("event") for r in caplog.records]
    assert names.count("otp_provider_circuit_open") == 1 and names.count("otp_provider_circuit_closed") == 1


def test_failed_probe_reopens_and_only_one_probe_passes(infobip, settings):
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 1, "CIRCUIT_OPEN_SECONDS": 30}
    infobip.post(PIN_URL, status=502)
    phones = numbers(4)
    with pytest.raises(Exception):
        services.send_code(phones[0])
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        circuit.before_call()  # this caller holds the probe slot
        with pytest.raises(Exception, match="circuit is open"):
            circuit.before_call()  # a second caller does not get one
        circuit.record_failure()
        assert circuit.state() == circuit.OPEN


def test_verify_and_resend_share_the_breaker(otp_api, outbox, settings):
    from otp.providers import locmem

    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 2}
    otp_api.send()
    circuit.record_failure()
    circuit.record_failure()
    response = otp_api.verify(outbox[0].pin)
    assert response.status_code == 503
    assert OtpAttempt.objects.get().verified_at is None
    assert len(locmem.outbox) == 1


def test_not_found_is_not_a_provider_failure(settings, infobip):
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 1}
    infobip.post(PIN_URL, json={"pinId": "P1"})
    infobip.post(f"{PIN_URL}/P1/verify", status=404)
    services.send_code(PHONE)
    with pytest.raises(Exception):
        services.verify_code(PHONE, "123456")
    assert circuit.state() == circuit.CLOSED


def test_bulkhead_answers_503_at_once_when_slots_are_busy(otp_api, outbox, settings):
    settings.OTP = {**settings.OTP, "PROVIDER_MAX_CONCURRENCY": 1, "PROVIDER_QUEUE_TIMEOUT_SECONDS": 0.05}
    slots = provider_calls._semaphore()
    assert slots is not None and slots.acquire()
    try:
        started = time.monotonic()
        response = otp_api.send()
        assert response.status_code == 503 and time.monotonic() - started < 1
    finally:
        slots.release()
    assert outbox == [] and OtpAttempt.objects.get().status == AttemptStatus.FAILED
    assert otp_api.send("+14155550123").status_code == 200


def test_database_down_before_send_means_no_sms(otp_api, outbox, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("django.db.backends.utils.CursorWrapper.execute", down)
    response = otp_api.send()
    assert response.status_code == 503
    assert response.json() == {"error": UNAVAILABLE, "code": "temporarily_unavailable"}
    assert outbox == []


def test_database_failure_after_the_provider_accepted_logs_an_orphan(otp_api, outbox, monkeypatch, caplog):
    def down(attempt, pin_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "_record_delivery", down)
    caplog.set_level(logging.INFO, logger="otp.security")
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE}, HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 503 and "Traceback" not in response.content.decode()
    assert len(outbox) == 1  # the SMS did go out
    (orphan,) = [r.otp_event for r in caplog.records if getattr(r, "otp_event", {}).get("event") == "otp_send_orphan"]
    attempt = OtpAttempt.objects.get()
    assert orphan["request_id"] == "req-42" and orphan["attempt"] == attempt.pk
    assert orphan["phone"] == "+1********71" and PHONE not in caplog.text
    assert attempt.status == AttemptStatus.SENDING and attempt.pin_id is None  # never verifies
    assert otp_api.verify(outbox[0].pin).status_code == 401


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.usefixtures("require_postgres")
def test_a_stuck_row_lock_fails_fast(otp_api, outbox):
    PhoneState.objects.create(phone=PHONE)
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with transaction.atomic():
            PhoneState.objects.select_for_update().get(phone=PHONE)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5)
        started = time.monotonic()
        response = otp_api.send()
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503 and 2.9 < elapsed < 6  # lock_timeout is 3 s in the test settings
    assert outbox == [] and not OtpAttempt.objects.exists()


def test_json_log_lines_carry_event_fields():
    record = logging.LogRecord("otp.security", logging.INFO, __file__, 1, "event='x'", None, None)
    record.otp_event = {"event": "authn_otp_fail", "phone": "+1********71", "request_id": "r1"}
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert "\n" not in line
    assert (data["event"], data["phone"], data["request_id"], data["level"]) == (
        "authn_otp_fail",
        "+1********71",
        "r1",
        "INFO",
    )


def test_one_access_record_per_request_with_the_events_request_id(otp_api, caplog):
    caplog.set_level(logging.INFO)
    response = otp_api.send()
    request_id = response["X-Request-ID"]
    (access,) = [r.request for r in caplog.records if r.name == "otp.request"]
    assert access["request_id"] == request_id and access["status"] == 200
    assert access["route"] == "^send-otp/?$" and access["duration_ms"] > 0
    events = [r.otp_event for r in caplog.records if hasattr(r, "otp_event")]
    assert events and {e["request_id"] for e in events} == {request_id}


@pytest.mark.django_db(transaction=True)
def test_a_pooled_connection_goes_back_before_the_provider_is_called(otp_api, monkeypatch):
    from otp.providers import locmem

    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {**connection.settings_dict["OPTIONS"], "pool": True})
    events: list[str] = []
    monkeypatch.setattr(connection, "close", lambda: events.append("released"))
    real_send = locmem.LocmemProvider.send

    def send(self, phone, channel="sms"):
        events.append("provider")
        return real_send(self, phone, channel=channel)

    monkeypatch.setattr(locmem.LocmemProvider, "send", send)
    try:
        assert otp_api.send().status_code == 200
        assert events[:2] == ["released", "provider"]
    finally:
        # On PostgreSQL a connection made meanwhile came from a real pool
        # (psycopg's keeps 4 by default): give it back and close the pool, or
        # its connections outlive the test database.
        wrapper = connections[DEFAULT_DB_ALIAS]
        type(wrapper).close(wrapper)  # the real close, not the test's stand-in
        if isinstance(wrapper, PostgresWrapper):
            wrapper.close_pool()


def test_no_release_inside_a_transaction_or_without_a_pool(monkeypatch):
    closed: list[bool] = []
    monkeypatch.setattr(connection, "close", lambda: closed.append(True))
    provider_calls.release_database_connection()  # the test's transaction is open
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})
    provider_calls.release_database_connection()
    assert closed == []
