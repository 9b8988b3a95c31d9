"""The Infobip provider against mocked HTTP: exact requests, every answer mapped."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
from http.client import RemoteDisconnected
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from otp.exceptions import (
    PinNotFound,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from otp.providers.infobip import InfobipProvider, InvalidBaseUrl, normalize_base_url
from tests.conftest import INFOBIP_BASE, INFOBIP_HOST, INFOBIP_OPTIONS, PHONE, infobip_http

PIN_ID = "9C817C6F8AF3D48F9FE553282AFA2B67"
SEND_URL = f"{INFOBIP_BASE}/2fa/2/pin"
VERIFY_URL = f"{INFOBIP_BASE}/2fa/2/pin/{PIN_ID}/verify"


@pytest.fixture
def provider() -> InfobipProvider:
    return InfobipProvider(**INFOBIP_OPTIONS)


@pytest.fixture
def http():
    with infobip_http() as mock:
        yield mock


def test_send_posts_documented_request(provider, http):
    http.post(
        SEND_URL,
        json={
            "pinId": PIN_ID,
            "to": "14155552671",
            "ncStatus": "NC_DESTINATION_REACHABLE",
            "smsStatus": "MESSAGE_SENT",
        },
    )
    result = provider.send("+14155552671")
    assert result.pin_id == PIN_ID and result.delivered
    request = http.calls[0].request
    assert request.url == SEND_URL
    assert request.headers["Authorization"] == "App test-api-key-0123456789"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.body) == {"applicationId": "APP-ID-1", "messageId": "MSG-ID-1", "to": "14155552671"}
    assert request.req_kwargs["timeout"] == (2.0, 5.0)


@pytest.mark.parametrize(
    "body",
    [
        {"pinId": PIN_ID, "smsStatus": "MESSAGE_NOT_SENT"},
        {"pinId": PIN_ID, "ncStatus": "NC_DESTINATION_NOT_REACHABLE"},
        {"pinId": PIN_ID, "ncStatus": "NC_NOT_REACHABLE", "smsStatus": "MESSAGE_SENT"},
    ],
)
def test_send_not_delivered(provider, http, body):
    http.post(SEND_URL, json=body)
    result = provider.send("+14155552671")
    assert result.delivered is False and result.pin_id == PIN_ID


def test_send_unknown_nc_status_still_counts_as_sent(provider, http):
    http.post(SEND_URL, json={"pinId": PIN_ID, "ncStatus": "NC_NOT_CONFIGURED", "smsStatus": "MESSAGE_SENT"})
    assert provider.send("+14155552671").delivered is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"to": "14155552671"}},
        {"json": {"pinId": ""}},
        {"json": {"pinId": 12345}},
        {"json": ["not", "an", "object"]},
        {"body": "<html>gateway</html>", "content_type": "text/html"},
        {"body": ""},
    ],
)
def test_send_malformed_answers_are_unavailable(provider, http, kwargs):
    http.post(SEND_URL, status=200, **kwargs)
    with pytest.raises(ProviderUnavailable):
        provider.send("+14155552671")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, ProviderMisconfigured),
        (403, ProviderMisconfigured),
        (400, ProviderRejected),
        (404, ProviderRejected),
        (429, ProviderRateLimited),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
        (301, ProviderUnavailable),
        (302, ProviderUnavailable),
    ],
)
def test_send_status_mapping(provider, http, status, error):
    http.post(
        SEND_URL,
        status=status,
        headers={"Location": "https://evil.example/"},
        json={"requestError": {"serviceException": {"messageId": "X", "text": "t"}}},
    )
    with pytest.raises(error) as info:
        provider.send("+14155552671")
    assert info.value.status_code == status
    assert len(http.calls) == 1  # never retried, never redirected
    # Only misconfiguration and breakage count toward the circuit breaker.
    assert info.value.breaks_circuit is (status in (401, 403) or status < 400 or status >= 500)
    # Infobip's own error answer: nothing went out (a redirect may come after delivery).
    assert info.value.nothing_sent is (status >= 400)


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 502, 504])
@pytest.mark.parametrize(
    "body",
    [
        {"body": "<html><body>502 Bad Gateway</body></html>", "content_type": "text/html"},
        {"json": {"error": "proxy"}},
        {"json": {"requestError": "x"}},
    ],
)
def test_an_error_without_infobips_envelope_leaves_the_outcome_unknown(provider, http, status, body):
    http.post(SEND_URL, status=status, **body)
    with pytest.raises(ProviderError) as info:
        provider.send("+14155552671")
    # A 429 means the request was not processed, whoever says it.
    assert info.value.nothing_sent is (status == 429)


@pytest.mark.parametrize(
    ("error", "nothing_sent"),
    [
        (requests.ConnectTimeout("connect"), True),
        (requests.exceptions.SSLError("handshake"), True),
        (requests.ReadTimeout("read"), False),
        (requests.ConnectionError("Connection aborted.", RemoteDisconnected("closed")), False),
    ],
)
def test_only_a_request_that_never_left_counts_as_nothing_sent(provider, http, error, nothing_sent):
    http.post(SEND_URL, body=error)
    with pytest.raises(ProviderUnavailable) as info:
        provider.send("+14155552671")
    assert info.value.nothing_sent is nothing_sent


def test_429_carries_retry_after(provider, http):
    http.post(SEND_URL, status=429, headers={"Retry-After": "120"})
    with pytest.raises(ProviderRateLimited) as info:
        provider.send("+14155552671")
    assert info.value.retry_after == 120


@pytest.mark.parametrize(
    "error",
    [
        requests.ConnectTimeout("connect"),
        requests.ReadTimeout("read"),
        requests.ConnectionError("reset"),
        requests.exceptions.ChunkedEncodingError("cut"),
    ],
)
def test_transport_errors_are_unavailable(provider, http, error):
    http.post(SEND_URL, body=error)
    with pytest.raises(ProviderUnavailable):
        provider.send("+14155552671")


def test_verify_success(provider, http):
    http.post(VERIFY_URL, json={"pinId": PIN_ID, "msisdn": "14155552671", "verified": True, "attemptsRemaining": 0})
    result = provider.verify(PIN_ID, "123456")
    assert result.verified is True and result.pin_error is None and result.attempts_remaining == 0
    assert json.loads(http.calls[0].request.body) == {"pin": "123456"}
    assert http.calls[0].request.headers["Authorization"] == "App test-api-key-0123456789"


@pytest.mark.parametrize("pin_error", ["WRONG_PIN", "TTL_EXPIRED", "NO_MORE_PIN_ATTEMPTS", "SOMETHING_NEW"])
def test_verify_failures_keep_pin_error(provider, http, pin_error):
    http.post(VERIFY_URL, json={"verified": False, "pinError": pin_error, "attemptsRemaining": 3})
    result = provider.verify(PIN_ID, "123456")
    assert result == type(result)(verified=False, pin_error=pin_error, attempts_remaining=3)


def test_verify_false_without_pin_error_is_a_failure(provider, http):
    http.post(VERIFY_URL, json={"verified": False})
    assert provider.verify(PIN_ID, "123456").verified is False


@pytest.mark.parametrize(
    "body",
    [
        {"verified": "true"},
        {"verified": 1},
        {},
        {"verified": True, "pinId": "ANOTHER"},
        {"verified": True, "pinError": "WRONG_PIN"},
        {"verified": False, "attemptsRemaining": "3"},
        {"verified": False, "pinError": 7},
    ],
)
def test_verify_wrong_shapes_fail_closed(provider, http, body):
    http.post(VERIFY_URL, json=body)
    with pytest.raises(ProviderUnavailable):
        provider.verify(PIN_ID, "123456")


def test_verify_404_means_pin_gone(provider, http):
    http.post(VERIFY_URL, status=404, json={"requestError": {"serviceException": {"messageId": "NOT_FOUND"}}})
    with pytest.raises(PinNotFound):
        provider.verify(PIN_ID, "123456")


def test_verify_quotes_the_pin_id(provider, http):
    http.post(f"{INFOBIP_BASE}/2fa/2/pin/A%2F..%2Fx/verify", json={"verified": False})
    provider.verify("A/../x", "123456")
    assert len(http.calls) == 1


def test_one_session_is_reused(provider, http):
    http.post(SEND_URL, json={"pinId": PIN_ID})
    session = provider.session
    provider.send("+14155552671")
    provider.send("+14155552671")
    assert provider.session is session and len(http.calls) == 2


def test_logs_never_carry_key_pin_or_pin_id(provider, http, caplog):
    caplog.set_level(logging.DEBUG)
    http.post(SEND_URL, json={"pinId": PIN_ID, "smsStatus": "MESSAGE_NOT_SENT"})
    http.post(VERIFY_URL, status=500, body="oops")
    provider.send("+14155552671")
    with pytest.raises(ProviderUnavailable) as info:
        provider.verify(PIN_ID, "654321")
    text = caplog.text + str(info.value) + repr(provider)
    for secret in ("test-api-key-0123456789", PIN_ID, "654321"):
        assert secret not in text


def test_urllib3_request_lines_are_redacted(provider, caplog):
    from otp.redaction import redact_pin_path

    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s', "https", "h", 443, "POST", f"/2fa/2/pin/{PIN_ID}/verify", "HTTP/1.1", 200, 10
    )
    assert PIN_ID not in caplog.text and "/2fa/2/pin/<pinId>/verify" in caplog.text
    assert redact_pin_path("/2fa/2/pin") == "/2fa/2/pin"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("xyz.api.infobip.com", "https://xyz.api.infobip.com"),
        ("https://xyz.api.infobip.com/", "https://xyz.api.infobip.com"),
        ("http://127.0.0.1:18081", "http://127.0.0.1:18081"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_base_url_normalisation(raw, expected):
    assert normalize_base_url(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "http://xyz.api.infobip.com", "ftp://host", "https://u:p@host", "https://host/?q=1", "http://10.0.0.1"]
)
def test_base_url_refused(raw):
    with pytest.raises(InvalidBaseUrl):
        normalize_base_url(raw)


def test_a_read_timeout_wrapped_by_urllib3_is_reported_as_a_timeout(provider, http):
    from urllib3 import HTTPSConnectionPool
    from urllib3.exceptions import MaxRetryError, ReadTimeoutError

    pool = HTTPSConnectionPool(INFOBIP_HOST)
    wrapped = requests.ConnectionError(MaxRetryError(pool, SEND_URL, ReadTimeoutError(pool, SEND_URL, "read")))
    http.post(SEND_URL, body=wrapped)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        provider.send("+14155552671")


def test_a_refused_connection_is_not_a_timeout(provider, http):
    from urllib3 import HTTPSConnectionPool
    from urllib3.connection import HTTPSConnection
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    refused = requests.ConnectionError(
        MaxRetryError(
            HTTPSConnectionPool(INFOBIP_HOST), SEND_URL, NewConnectionError(HTTPSConnection(INFOBIP_HOST), "refused")
        )
    )
    http.post(SEND_URL, body=refused)
    with pytest.raises(ProviderUnavailable, match="failed: ConnectionError"):
        provider.send("+14155552671")


class _HeldInfobip(BaseHTTPRequestHandler):
    """Answers a send once ``server.barrier`` has every call in flight; notes each client connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Infobip

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.clients.add(self.client_address)  # type: ignore[attr-defined]
        self.server.barrier.wait()  # type: ignore[attr-defined]
        body = json.dumps({"pinId": PIN_ID, "to": "14155552671", "smsStatus": "MESSAGE_SENT"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # every call connects at once
    daemon_threads = True


@pytest.mark.parametrize("slots", [40, 6])
def test_every_call_the_bulkhead_admits_keeps_its_connection(settings, caplog, slots):
    settings.OTP = {**settings.OTP, "PROVIDER_MAX_CONCURRENCY": slots}
    server = _Server(("127.0.0.1", 0), _HeldInfobip)
    server.barrier = threading.Barrier(slots, timeout=10)  # type: ignore[attr-defined]
    server.clients = set()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    provider = InfobipProvider(**{**INFOBIP_OPTIONS, "base_url": base_url})
    try:
        for _ in range(2):  # the second round must reuse the first round's connections
            with concurrent.futures.ThreadPoolExecutor(slots) as pool:
                results = list(pool.map(lambda _: provider.send(PHONE), range(slots)))
            assert [result.pin_id for result in results] == [PIN_ID] * slots
    finally:
        server.shutdown()
        server.server_close()
    assert len(server.clients) == slots  # type: ignore[attr-defined]  # none discarded and opened again
    assert "Connection pool is full" not in caplog.text


@pytest.mark.django_db
def test_a_key_read_with_its_newline_answers_503_and_never_reaches_a_log(otp_api, infobip, settings, caplog):
    settings.OTP = {**settings.OTP, "PROVIDER_OPTIONS": {**INFOBIP_OPTIONS, "api_key": "s3cret-key-from-file\n"}}
    caplog.set_level(logging.DEBUG)
    response = otp_api.send()
    assert response.status_code == 503 and response.json()["code"] == "provider_unavailable"
    assert len(infobip.calls) == 0
    assert "s3cret-key" not in caplog.text + response.content.decode()
