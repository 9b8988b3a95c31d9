"""Health endpoints: liveness touches nothing; readiness needs the database and the cache."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from otp.providers import circuit

pytestmark = pytest.mark.django_db

READINESS = ["/healthz", "/healthz/ready"]
# Nothing listens on port 1: a connection there is refused at once.
UNREACHABLE_REDIS = {"default": {"BACKEND": "otp.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


@pytest.fixture
def database_down(monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection to server at 10.0.0.5 failed: secret-hostname")

    monkeypatch.setattr(connection, "cursor", broken_cursor)


def assert_no_exception_named(body: dict) -> None:
    text = repr(body)
    assert "Error" not in text and "secret-hostname" not in text, body


@pytest.mark.parametrize("path", READINESS)
def test_ready_when_database_and_cache_answer(api, path):
    response = api.get(path)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["cache"], body["provider_circuit"]) == ("ok", "ok", "ok", "closed")


@pytest.mark.parametrize("path", READINESS)
def test_not_ready_without_the_database(api, database_down, path):
    response = api.get(path)
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["cache"]) == ("unavailable", "error", "ok")
    assert_no_exception_named(body)


@pytest.mark.parametrize("path", READINESS)
def test_not_ready_without_the_cache(api, settings, path):
    settings.CACHES = UNREACHABLE_REDIS
    response = api.get(path)
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["cache"]) == ("unavailable", "ok", "error")
    assert body["provider_circuit"] == "unknown"  # it lives in the cache
    assert_no_exception_named(body)


@pytest.mark.parametrize("path", READINESS)
def test_an_open_circuit_is_reported_but_still_ready(api, settings, path):
    # An Infobip outage must not make an orchestrator restart every instance.
    settings.OTP = {**settings.OTP, "CIRCUIT_FAILURES": 1}
    circuit.record_failure()
    response = api.get(path)
    assert response.status_code == 200
    assert response.json()["provider_circuit"] == "open" and response.json()["status"] == "degraded"


def test_live_while_the_database_and_cache_are_down(api, settings, database_down, django_assert_num_queries):
    settings.CACHES = UNREACHABLE_REDIS
    with django_assert_num_queries(0):
        response = api.get("/healthz/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz/live", *READINESS])
def test_health_answers_get_only_and_is_never_cached(api, path):
    assert api.post(path).status_code == 405
    assert "no-cache" in api.get(path)["Cache-Control"]
