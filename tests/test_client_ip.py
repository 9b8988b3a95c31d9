"""The client IP behind trusted proxies, and the bucket it is counted in."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import RequestFactory

from otp import events
from otp.exceptions import InvalidForwardedFor
from otp.limits import client_ip as client_ip_module
from otp.limits.client_ip import client_ip, ip_bucket
from otp.models import OtpAttempt, PhoneState, RateCounter
from tests.conftest import PHONE
from tests.test_limits import assert_limited, phones

pytestmark = pytest.mark.django_db

PROXY = "10.1.1.1"
BAD_FORWARDED_FOR = {
    "error": "The X-Forwarded-For header is missing or malformed.",
    "code": "invalid_forwarded_for",
}


@pytest.fixture
def proxies(settings, production_limits):
    """Production limits behind ``count`` trusted proxies, with the given overrides."""

    def apply(count: int = 1, **overrides):
        settings.OTP = {**production_limits, "TRUSTED_PROXY_COUNT": count, **overrides}

    return apply


@pytest.fixture
def fresh_misconfiguration_log(monkeypatch):
    """Each test starts a new logging interval for the misconfiguration warning."""
    monkeypatch.setattr(client_ip_module, "_misconfiguration_log", events.OncePerInterval(60))


def request_from(remote: str = PROXY, forwarded: str | None = None):
    extra: dict[str, Any] = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return RequestFactory().post("/send-otp", REMOTE_ADDR=remote, **extra)


# -- buckets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("::FFFF:cb00:7105", "203.0.113.5"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("", "unknown"),
    ],
)
def test_ip_bucket(address, bucket):
    assert ip_bucket(address) == bucket


def test_ipv4_mapped_clients_are_counted_apart(otp_api, outbox, proxies):
    # What a dual-stack bind puts in REMOTE_ADDR for IPv4 clients.
    proxies(count=0, IP_SEND_RATE="1/15m")
    numbers = phones(3)
    assert otp_api.post("/send-otp", {"phoneNumber": numbers[0]}, REMOTE_ADDR="::ffff:203.0.113.5").status_code == 200
    assert otp_api.post("/send-otp", {"phoneNumber": numbers[1]}, REMOTE_ADDR="::ffff:203.0.113.6").status_code == 200
    # The same client as a plain IPv4 address is the same bucket.
    assert_limited(otp_api.post("/send-otp", {"phoneNumber": numbers[2]}, REMOTE_ADDR="203.0.113.5"))
    assert len(outbox) == 2


# -- X-Forwarded-For -------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("203.0.113.5:5678", "203.0.113.5"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("[::ffff:203.0.113.5]:443", "203.0.113.5"),
    ],
)
def test_forwarded_entry_forms(proxies, entry, address):
    proxies(count=1)
    assert client_ip(request_from(forwarded=f"198.51.100.1, {entry}")) == address


def test_the_nth_entry_from_the_right_is_read(proxies):
    proxies(count=2)
    assert client_ip(request_from(forwarded="6.6.6.6, 203.0.113.5:5678, 10.0.0.2")) == "203.0.113.5"


@pytest.mark.parametrize(
    "forwarded",
    [
        "not-an-address",
        "203.0.113.5:port",
        "203.0.113.5:5678:1",
        "[203.0.113.5]:443",
        "2001:db8::1]:443",
        "[2001:db8::1]:",
        "[2001:db8::1]443",
        "unknown",
        "",
        " , ",
    ],
)
def test_unparseable_or_missing_entry_is_refused(proxies, forwarded):
    proxies(count=1)
    with pytest.raises(InvalidForwardedFor):
        client_ip(request_from(forwarded=forwarded))


def test_no_header_is_refused_behind_proxies(proxies):
    proxies(count=1)
    with pytest.raises(InvalidForwardedFor):
        client_ip(request_from())


def test_fewer_entries_than_proxies_is_refused(proxies):
    proxies(count=2)
    with pytest.raises(InvalidForwardedFor):
        client_ip(request_from(forwarded="203.0.113.5"))


def test_without_proxies_the_header_is_never_read(proxies):
    proxies(count=0)
    assert client_ip(request_from(remote="203.0.113.9", forwarded="junk")) == "203.0.113.9"


# -- through the API --------------------------------------------------------------


def assert_refused(response):
    assert response.status_code == 400, response.content
    assert response.json() == BAD_FORWARDED_FOR
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/send-otp", "/resend-otp"])
@pytest.mark.parametrize("forwarded", [None, "junk", "203.0.113.5:port", "6.6.6.6, [203.0.113.5]"])
def test_bad_forwarded_for_is_a_400_that_counts_nothing(
    otp_api, outbox, proxies, fresh_misconfiguration_log, path, forwarded
):
    proxies(count=1, IP_SEND_RATE="1/15m")
    extra: dict[str, Any] = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    for _ in range(3):
        assert_refused(otp_api.post(path, {"phoneNumber": PHONE}, REMOTE_ADDR=PROXY, **extra))
    assert outbox == []
    assert not OtpAttempt.objects.exists() and not PhoneState.objects.exists() and not RateCounter.objects.exists()
    # Neither the proxy's bucket (the old fallback) nor any other was counted.
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=PROXY)
    assert response.status_code == 200
    assert len(outbox) == 1


def test_bad_forwarded_for_on_verify_counts_no_failure(otp_api, outbox, proxies, fresh_misconfiguration_log):
    proxies(count=1, IP_VERIFY_RATE="1/5m")
    sent = otp_api.post("/send-otp", {"phoneNumber": PHONE}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=PROXY)
    assert sent.status_code == 200
    wrong = "000000" if outbox[0].pin != "000000" else "111111"
    for _ in range(3):
        response = otp_api.post("/verify-otp", {"phoneNumber": PHONE, "pin": wrong}, REMOTE_ADDR=PROXY)
        assert_refused(response)
    assert OtpAttempt.objects.get().verify_slots_used == 0
    pin = outbox[0].pin
    response = otp_api.post(
        "/verify-otp", {"phoneNumber": PHONE, "pin": pin}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=PROXY
    )
    assert response.status_code == 200


def test_junk_the_client_writes_left_of_the_proxies_is_never_read(otp_api, outbox, proxies):
    proxies(count=1, IP_SEND_RATE="1/15m")
    numbers = phones(2)
    for number, forwarded in zip(numbers, ["junk, [bad, 203.0.113.5:5678", "tel:x, 203.0.113.6"], strict=True):
        response = otp_api.post("/send-otp", {"phoneNumber": number}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)
        assert response.status_code == 200, response.content
    assert len(outbox) == 2


def test_the_400_carries_the_request_id_and_its_log_record_is_rate_limited(
    otp_api, outbox, proxies, fresh_misconfiguration_log, caplog, monkeypatch
):
    proxies(count=1)
    clock = [1000.0]
    monkeypatch.setattr(client_ip_module._misconfiguration_log, "clock", lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="otp.security")

    def refused(request_id: str, forwarded: str):
        response = otp_api.post(
            "/send-otp",
            {"phoneNumber": PHONE},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=forwarded,
            HTTP_X_REQUEST_ID=request_id,
        )
        assert_refused(response)
        assert response["X-Request-ID"] == request_id

    def records():
        return [r.otp_event for r in caplog.records if getattr(r, "otp_event", {}).get("event") == EVENT]

    EVENT = "otp_forwarded_for_invalid"
    refused("xff-1", "junk\u2028one")
    for i in range(50):
        refused(f"xff-flood-{i}", f"junk-{i}")
    clock[0] += 61
    refused("xff-2", "6.6.6.6, 203.0.113.5:x")
    first, second = records()
    assert first["request_id"] == "xff-1" and first["client_ip"] == PROXY
    assert first["entry"] == "junk\u2028one" and first["suppressed"] == 0
    assert second["request_id"] == "xff-2" and second["entry"] == "203.0.113.5:x" and second["suppressed"] == 50
    assert all("\u2028" not in r.getMessage() for r in caplog.records)
    assert outbox == []


def test_the_error_is_translated(otp_api, proxies, fresh_misconfiguration_log):
    proxies(count=1)
    response = otp_api.post("/send-otp", {"phoneNumber": PHONE}, REMOTE_ADDR=PROXY, HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Falta la cabecera X-Forwarded-For o está mal formada.",
        "code": "invalid_forwarded_for",
    }


def test_the_ip_limit_refuses_a_bad_header_as_bad_input_not_as_a_cache_failure(proxies, fresh_misconfiguration_log):
    from otp.limits import ip as iplimits

    proxies(count=1)
    with pytest.raises(InvalidForwardedFor):
        iplimits.check_ip_limit(request_from(forwarded="junk"), iplimits.SEND)
