"""Keep-alive connections under gunicorn after an answer that leaves the request body unread.

The endpoints read at most ``MAX_REQUEST_BYTES + 1`` bytes and answer 413
beyond. A client that sent the whole body then reuses its connection, as
``requests.Session``, browsers and mobile HTTP stacks do: the next request on
it must be served, or the 413 must say ``Connection: close`` so that the
client opens a new connection instead.
"""

from __future__ import annotations

import json
import runpy
import socket
from collections.abc import Iterable

import pytest
import requests

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.postgres

# The largest body the site keeps a connection open after.
KEEPALIVE_MAX_BODY = runpy.run_path(str(ROOT / "otpsite" / "gunicorn.conf.py"))["KEEPALIVE_MAX_BODY"]
TRIES = 8


@pytest.fixture(scope="module")
def site(launch):
    instance = launch("keepalive")
    yield instance
    instance.stop()


def padded_body(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    head = b'{"phoneNumber": "+14155550100", "pad": "'
    body = head + b"x" * (size - len(head) - 2) + b'"}'
    assert len(body) == size
    json.loads(body)
    return body


def post(
    session: requests.Session, site, path: str, body: bytes | Iterable[bytes]
) -> tuple[requests.Response, int | None]:
    """The answer, and the client's port of the connection that carried it.

    An iterable body goes chunked (``Transfer-Encoding: chunked``).

    ``None`` when the client closed the connection on reading the answer's head
    (``Connection: close``).
    """
    response = session.post(
        site.base + path, data=body, headers={"Content-Type": "application/json"}, timeout=15, stream=True
    )
    connection = response.raw.connection
    sock = connection.sock if connection else None
    port = sock.getsockname()[1] if sock else None
    _ = response.content  # read it all: the connection goes back to the session
    return response, port


def send(session: requests.Session, site, phone: str) -> int:
    """Send a code for ``phone``; the client's port of the connection used."""
    response, port = post(session, site, "/send-otp", json.dumps({"phoneNumber": phone}).encode())
    assert response.status_code == 200, response.text
    assert port is not None
    return port


def assert_too_large(response: requests.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {"error": "Request body is too large.", "code": "payload_too_large"}


def test_one_connection_serves_many_requests(site, new_phone):
    with requests.Session() as session:
        ports = {send(session, site, new_phone()) for _ in range(5)}
    assert len(ports) == 1


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [
        ("/send-otp", 1024 * 1024, 413),
        ("/send-otp", KEEPALIVE_MAX_BODY + 1, 413),
        ("/no-such-page", KEEPALIVE_MAX_BODY + 1, 404),  # not a byte of the body read
    ],
    ids=["413-1MiB", "413-bound+1", "404-bound+1"],
)
def test_an_answer_over_the_bound_closes_the_connection_cleanly(site, new_phone, path, size, status):
    body = padded_body(size)
    with requests.Session() as session:
        for attempt in range(TRIES):
            before = send(session, site, new_phone())
            early, port = post(session, site, path, body)
            assert early.status_code == status, early.text
            if status == 413:
                assert_too_large(early)
            # The next request on the session: never "remote end closed connection".
            after = send(session, site, new_phone())
            # The answer announced the close, so the client opened a new connection for the next one.
            assert early.headers["Connection"] == "close", attempt
            assert port is None and after != before


def test_a_chunked_body_closes_the_connection(site, new_phone):
    """Its length is unknown until it has been read, so the answer closes the connection."""
    with requests.Session() as session:
        for attempt in range(TRIES):
            before = send(session, site, new_phone())
            early, port = post(session, site, "/send-otp", iter([b" " * 65536] * 16))
            assert early.status_code == 400, early.text
            after = send(session, site, new_phone())
            assert early.headers["Connection"] == "close", attempt
            assert port is None and after != before


@pytest.mark.parametrize("path", ["/send-otp", "/no-such-page"])
def test_a_body_within_the_bound_keeps_the_connection(site, new_phone, path):
    """gunicorn discards the unread rest; this fails should an upgrade of it discard less."""
    body = padded_body(KEEPALIVE_MAX_BODY)
    with requests.Session() as session:
        ports = {send(session, site, new_phone())}
        for _ in range(TRIES):
            answer, port = post(session, site, path, body)
            assert answer.status_code == (413 if path == "/send-otp" else 404)
            assert answer.headers["Connection"] == "keep-alive" and port is not None
            ports |= {port, send(session, site, new_phone())}
    assert len(ports) == 1


def test_after_the_close_the_server_reads_nothing_more(site):
    """A raw client: the whole 413, then the end of the connection, never another response."""
    body = padded_body(1024 * 1024)
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        head = (
            f"POST /send-otp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # the server discarded the unread body on close: the answer came before
        headers, _, payload = received.partition(b"\r\n\r\n")
        assert headers.startswith(b"HTTP/1.1 413 ")
        assert b"\r\nConnection: close\r\n" in headers + b"\r\n"
        assert json.loads(payload)["code"] == "payload_too_large"
