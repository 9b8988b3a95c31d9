"""Client addresses as gunicorn hands them over: a dual-stack bind and a proxy's X-Forwarded-For."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.postgres


def send_from(source: str, port: int, phone: str, **headers: str) -> tuple[int, dict[str, Any]]:
    """POST /send-otp over IPv4 from the loopback address ``source``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    try:
        body = json.dumps({"phoneNumber": phone})
        connection.request("POST", "/send-otp", body, {"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_ipv4_clients_of_a_dual_stack_bind_keep_buckets_of_their_own(start_site, emulator, new_phone):
    # On [::] IPv4 clients arrive as ::ffff:127.0.0.x, all in one ::/64.
    site = start_site(GUNICORN_BIND=f"[::]:{free_port()}", OTP_IP_SEND_RATE="1/15m")
    assert send_from("127.0.0.2", site.port, new_phone())[0] == 200
    assert send_from("127.0.0.3", site.port, new_phone())[0] == 200
    assert send_from("127.0.0.2", site.port, new_phone())[0] == 429
    assert emulator.calls("send") == 2
    sent = [r for r in site.records() if r.get("event") == "otp_send_accepted"]
    assert sorted(r["client_ip"] for r in sent) == ["127.0.0.2", "127.0.0.3"]


def test_a_proxy_that_sends_no_client_address_gets_a_400_and_one_warning(start_site, emulator, new_phone):
    site = start_site(OTP_TRUSTED_PROXY_COUNT="1", OTP_IP_SEND_RATE="1/15m")
    for headers in ({}, {"X-Forwarded-For": "unknown"}, {"X-Forwarded-For": "198.51.100.7:port"}):
        status, body = send_from("127.0.0.1", site.port, new_phone(), **headers)
        assert status == 400
        assert body == {"error": "The X-Forwarded-For header is missing or malformed.", "code": "invalid_forwarded_for"}
    assert emulator.calls("send") == 0
    warnings = [r for r in site.records() if r.get("event") == "otp_forwarded_for_invalid"]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
    # Neither the proxy's bucket nor any other was counted; ports and brackets parse.
    for forwarded in ("198.51.100.7:5678", "[2001:db8::7]:443"):
        assert send_from("127.0.0.1", site.port, new_phone(), **{"X-Forwarded-For": forwarded})[0] == 200
    assert send_from("127.0.0.1", site.port, new_phone(), **{"X-Forwarded-For": "[2001:db8::9]"})[0] == 429
    assert emulator.calls("send") == 2
