"""Shared fixtures: an API client, the locmem outbox, an Infobip-configured app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.core.cache import cache
from django.db import connection
from django.utils import translation
from rest_framework.test import APIClient

from otp.providers import locmem

# The fixtures the app offers to sites (otp_outbox) are tested here too.
pytest_plugins = ["otp.testing"]

INFOBIP_HOST = "xyz.api.infobip.com"
INFOBIP_BASE = f"https://{INFOBIP_HOST}"
# Infobip's HTTP calls leave through requests' own adapter, where responses patches by default.
INFOBIP_HTTP_SEND = "requests.adapters.HTTPAdapter.send"
INFOBIP_OPTIONS: dict[str, Any] = {
    "api_key": "test-api-key-0123456789",
    "base_url": "xyz.api.infobip.com",
    "application_id": "APP-ID-1",
    "message_id": "MSG-ID-1",
    "connect_timeout": 2,
    "read_timeout": 5,
}
PHONE = "+14155552671"


class ManualClock:
    """A clock that moves only when told: ``clock()`` reads it, ``clock.advance(s)`` moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _reset_outbox() -> Iterator[None]:
    locmem.reset()
    cache.clear()  # the IP limiter's buckets
    yield
    locmem.reset()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """A request in Spanish leaves Spanish active in its thread (LocaleMiddleware activates, nothing resets)."""
    yield
    translation.deactivate()


@pytest.fixture
def production_limits(settings: Any) -> dict[str, Any]:
    """Every limit at its shipped default (the locmem provider stays)."""
    # The failure latency floor is not a limit; it would only slow the tests.
    settings.OTP = {
        "PROVIDER": "otp.providers.locmem.LocmemProvider",
        "VERIFY_FAILURE_MIN_SECONDS": 0,
        "VERIFY_FAILURE_MAX_SECONDS": 0,
    }
    return settings.OTP


@pytest.fixture
def outbox() -> list[locmem.SentMessage]:
    """Messages the locmem provider "sent" during the test."""
    return locmem.outbox


@pytest.fixture
def api() -> APIClient:
    return APIClient()


class Api:
    """POSTs JSON to the endpoints and returns (status, body)."""

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def post(self, path: str, body: Any, **extra: Any) -> Any:
        return self.client.post(path, body, format="json", **extra)

    def send(self, phone: str = PHONE) -> Any:
        return self.post("/send-otp", {"phoneNumber": phone})

    def verify(self, pin: str, phone: str = PHONE) -> Any:
        return self.post("/verify-otp", {"phoneNumber": phone, "pin": pin})


@pytest.fixture
def otp_api(api: APIClient) -> Api:
    return Api(api)


@pytest.fixture
def infobip(settings: Any) -> Iterator[responses.RequestsMock]:
    """The app configured for Infobip, with Infobip's HTTP API mocked."""
    settings.OTP = {
        **settings.OTP,
        "PROVIDER": "otp.providers.infobip.InfobipProvider",
        "PROVIDER_OPTIONS": dict(INFOBIP_OPTIONS),
    }
    with infobip_http(assert_all_requests_are_fired=False) as mock:
        yield mock


def infobip_http(**options: Any) -> responses.RequestsMock:
    """A ``responses`` mock of the Infobip client's HTTP calls."""
    return responses.RequestsMock(target=INFOBIP_HTTP_SEND, **options)


@pytest.fixture
def require_postgres() -> None:
    """Skip on other databases, or fail when the run says PostgreSQL is required."""
    if connection.vendor != "postgresql":
        if os.environ.get("OTP_TESTS_REQUIRE_POSTGRES") == "1":
            pytest.fail("this test needs PostgreSQL and OTP_TESTS_REQUIRE_POSTGRES=1")
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
