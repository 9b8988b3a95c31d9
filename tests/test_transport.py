"""The Infobip client's transport adapter against real HTTP and HTTPS servers on loopback."""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from otp.providers.infobip import build_session
from otp.providers.transport import MAX_RESPONSE_BYTES, KeepAliveAdapter

TIMEOUT = (2.0, 2.0)
ANSWER = {"pinId": "P1", "smsStatus": "MESSAGE_SENT"}


class _Upstream(BaseHTTPRequestHandler):
    """Answers by path; notes every connection and request it sees."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: Any = self.server
        with server.lock:
            server.connections.add(self.client_address)
            server.requests.append((self.path, dict(self.headers), body))
        answer, headers, status = json.dumps(ANSWER).encode(), {}, 200
        if self.path == "/slow":
            time.sleep(0.6)
        elif self.path == "/close":
            headers["Connection"] = "close"
        elif self.path == "/gzip":
            answer, headers = gzip.compress(answer), {"Content-Encoding": "gzip"}
        elif self.path == "/bomb":
            answer, headers = gzip.compress(b" " * (MAX_RESPONSE_BYTES + 10)), {"Content-Encoding": "gzip"}
        elif self.path == "/big":
            answer = b" " * (MAX_RESPONSE_BYTES + 1)
        elif self.path == "/redirect":
            status, answer, headers = 302, b"", {"Location": "http://127.0.0.1:9/elsewhere"}
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)
        if self.path == "/hang-up":
            # Closes the kept connection after answering, without saying so.
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(tls: ssl.SSLContext | None = None) -> _Server:
    server = _Server(("127.0.0.1", 0), _Upstream)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.connections = set()  # type: ignore[attr-defined]
    server.requests = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def upstream() -> Iterator[Any]:
    server = _serve()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    session = build_session("test-key", pool_maxsize=4)
    assert isinstance(session.get_adapter("https://x"), KeepAliveAdapter)
    yield session
    session.close()


def _url(server: Any, path: str, scheme: str = "http", host: str = "127.0.0.1") -> str:
    return f"{scheme}://{host}:{server.server_address[1]}{path}"


def test_calls_share_one_kept_connection_and_send_the_request_as_built(upstream, session):
    for _ in range(3):
        response = session.post(_url(upstream, "/ok"), json={"to": "14155552671"}, timeout=TIMEOUT)
        assert response.status_code == 200 and response.json() == ANSWER
    assert len(upstream.connections) == 1
    path, headers, body = upstream.requests[0]
    assert path == "/ok" and json.loads(body) == {"to": "14155552671"}
    assert headers["Authorization"] == "App test-key"
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Host"] == f"127.0.0.1:{upstream.server_address[1]}"


def test_a_connection_the_server_hung_up_is_replaced_before_use(upstream, session):
    session.post(_url(upstream, "/hang-up"), json={}, timeout=TIMEOUT)
    time.sleep(0.2)  # the server's close reaches the kept socket
    response = session.post(_url(upstream, "/ok"), json={}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert len(upstream.connections) == 2
    assert [path for path, _, _ in upstream.requests] == ["/hang-up", "/ok"]  # nothing sent twice


@pytest.fixture
def high_descriptors() -> Iterator[None]:
    """Holds enough descriptors that the next sockets get numbers past 1023, as in a busy worker."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"RLIMIT_NOFILE {soft} is too low to open 1,100 descriptors")
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    yield
    for fd in held:
        os.close(fd)


def test_a_kept_connection_past_descriptor_1023_is_still_reused(high_descriptors, upstream, session):
    for _ in range(3):
        assert session.post(_url(upstream, "/ok"), json={}, timeout=TIMEOUT).status_code == 200
    (pool,) = session.get_adapter("http://x")._idle.values()
    assert pool.queue[0].sock.fileno() > 1023
    assert len(upstream.connections) == 1


def _kept(session: requests.Session) -> int:
    return sum(pool.qsize() for pool in session.get_adapter("http://x")._idle.values())


def test_an_answer_that_closes_the_connection_is_not_kept(upstream, session):
    session.post(_url(upstream, "/close"), json={}, timeout=TIMEOUT)
    assert _kept(session) == 0
    session.post(_url(upstream, "/ok"), json={}, timeout=TIMEOUT)
    assert _kept(session) == 1
    assert len(upstream.connections) == 2


def test_a_read_timeout_raises_read_timeout_and_is_never_sent_again(upstream, session):
    with pytest.raises(requests.ReadTimeout):
        session.post(_url(upstream, "/slow"), json={}, timeout=(2.0, 0.2))
    time.sleep(0.8)  # the handler finishes; a retry would have arrived by now
    assert [path for path, _, _ in upstream.requests] == ["/slow"]
    assert session.post(_url(upstream, "/ok"), json={}, timeout=TIMEOUT).status_code == 200


def test_a_refused_connection_is_a_connection_error_not_a_timeout(upstream, session):
    url = _url(upstream, "/ok")
    upstream.shutdown()
    upstream.server_close()
    with pytest.raises(requests.ConnectionError) as info:
        session.post(url, json={}, timeout=TIMEOUT)
    assert not isinstance(info.value, requests.Timeout)


def test_a_gzip_answer_is_decoded(upstream, session):
    assert session.post(_url(upstream, "/gzip"), json={}, timeout=TIMEOUT).json() == ANSWER


@pytest.mark.parametrize(
    ("path", "error"), [("/big", requests.ConnectionError), ("/bomb", requests.exceptions.ContentDecodingError)]
)
def test_an_oversized_answer_is_refused(upstream, session, path, error):
    with pytest.raises(error, match="larger than"):
        session.post(_url(upstream, path), json={}, timeout=TIMEOUT)
    assert session.post(_url(upstream, "/ok"), json={}, timeout=TIMEOUT).status_code == 200


def test_a_redirect_is_answered_not_followed(upstream, session):
    response = session.post(_url(upstream, "/redirect"), json={}, timeout=TIMEOUT, allow_redirects=False)
    assert response.status_code == 302
    assert len(upstream.requests) == 1


def test_calls_it_does_not_cover_go_through_urllib3(upstream, session):
    adapter = session.get_adapter("http://x")
    request = requests.Request("POST", _url(upstream, "/ok"), json={}).prepare()
    response = adapter.send(request, stream=True, timeout=TIMEOUT)
    assert response.status_code == 200 and response.raw.__class__.__module__.startswith("urllib3")
    assert response.json() == ANSWER


# -- TLS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` (and not for 127.0.0.1)."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def tls_upstream(certificate) -> Iterator[Any]:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _serve(context)
    yield server
    server.shutdown()
    server.server_close()


def test_a_certificate_from_an_unknown_issuer_is_refused(tls_upstream, session):
    with pytest.raises(requests.exceptions.SSLError):
        session.post(_url(tls_upstream, "/ok", "https", "localhost"), json={}, timeout=TIMEOUT)
    assert tls_upstream.requests == []


def test_a_trusted_certificate_is_accepted_for_its_host_name_only(tls_upstream, session, certificate):
    adapter = session.get_adapter("https://x")
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    adapter._tls = trusting  # as if the issuer were in the CA bundle
    response = session.post(_url(tls_upstream, "/ok", "https", "localhost"), json={}, timeout=TIMEOUT)
    assert response.status_code == 200 and response.json() == ANSWER
    with pytest.raises(requests.exceptions.SSLError, match="(?i)mismatch|doesn't match|not valid for"):
        session.post(_url(tls_upstream, "/ok", "https", "127.0.0.1"), json={}, timeout=TIMEOUT)
    assert len(tls_upstream.requests) == 1
