"""The Infobip client's HTTP behaviour against real HTTP and HTTPS servers on loopback.

Everything goes through :func:`request_json` on a :func:`build_session`
session, as every call to Infobip does: requests, urllib3 and ``http.client``
underneath, with the client's timeouts, retry policy and answer cap.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import resource
import shutil
import socket
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

from otp.exceptions import ProviderMisconfigured, ProviderUnavailable
from otp.providers.infobip import MAX_RESPONSE_BYTES, InfobipProvider, build_session, request_json

TIMEOUT = (2.0, 2.0)
ANSWER = {"pinId": "P1", "smsStatus": "MESSAGE_SENT"}


class _Upstream(BaseHTTPRequestHandler):
    """Answers by path; notes every connection and request it sees.

    It also serves as a forward proxy: a request line with an absolute URL is
    recorded with that URL and answered the same way.
    """

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server: Any = self.server
        with server.lock:
            server.connections.add(self.client_address)
            server.requests.append((self.path, dict(self.headers), body))
        path = self.path.split("/", 3)[-1] if self.path.startswith("http") else self.path.lstrip("/")
        answer, headers, status = json.dumps(ANSWER).encode(), {}, 200
        length = None
        if path == "slow":
            time.sleep(0.6)
        elif path == "close":
            headers["Connection"] = "close"
        elif path == "gzip":
            answer, headers = gzip.compress(answer), {"Content-Encoding": "gzip"}
        elif path == "bomb":
            answer, headers = gzip.compress(b" " * (MAX_RESPONSE_BYTES + 10)), {"Content-Encoding": "gzip"}
        elif path == "big":
            answer = b" " * (MAX_RESPONSE_BYTES + 1)
        elif path == "truncated":
            # Promises more than it sends, then hangs up: {"verified":true} cut short.
            answer, length = b'{"verified":true}', 40
            self.close_connection = True
        elif path == "redirect":
            status, answer, headers = 302, b"", {"Location": "http://127.0.0.1:9/elsewhere"}
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length or len(answer)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)
        if path == "hang-up":
            # Closes the kept connection after answering, without saying so.
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.lock = threading.Lock()
        self.connections: set[tuple[str, int]] = set()
        #: (path, headers, body) of every request, in order.
        self.requests: list[tuple[str, dict[str, str], bytes]] = []


def _serve(tls: ssl.SSLContext | None = None) -> _Server:
    server = _Server(("127.0.0.1", 0), _Upstream)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stop(server: _Server) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def upstream() -> Iterator[Any]:
    server = _serve()
    yield server
    _stop(server)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    session = build_session("test-key", pool_maxsize=4)
    yield session
    session.close()


def _url(server: Any, path: str, scheme: str = "http", host: str = "127.0.0.1") -> str:
    return f"{scheme}://{host}:{server.server_address[1]}{path}"


def call(session: requests.Session, url: str, timeout: tuple[float, float] = TIMEOUT) -> Any:
    return request_json(session, "POST", url, body={"to": "14155552671"}, timeout=timeout, operation="send")


def test_calls_share_one_kept_connection_and_send_the_request_as_built(upstream, session):
    for _ in range(3):
        assert call(session, _url(upstream, "/ok")) == ANSWER
    assert len(upstream.connections) == 1
    path, headers, body = upstream.requests[0]
    assert path == "/ok" and json.loads(body) == {"to": "14155552671"}
    assert headers["Authorization"] == "App test-key"
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Host"] == f"127.0.0.1:{upstream.server_address[1]}"


def test_a_connection_the_server_hung_up_is_replaced_before_use(upstream, session):
    call(session, _url(upstream, "/hang-up"))
    time.sleep(0.2)  # the server's close reaches the kept socket
    assert call(session, _url(upstream, "/ok")) == ANSWER
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
        assert call(session, _url(upstream, "/ok")) == ANSWER
    # A stale-connection check that refused descriptors past 1023 (select) would reconnect every time.
    assert len(upstream.connections) == 1


def test_an_answer_that_closes_the_connection_is_not_kept(upstream, session):
    call(session, _url(upstream, "/close"))
    call(session, _url(upstream, "/ok"))
    call(session, _url(upstream, "/ok"))
    assert len(upstream.connections) == 2


def test_a_read_timeout_is_reported_as_one_and_the_request_is_never_sent_again(upstream, session):
    with pytest.raises(ProviderUnavailable, match="timed out") as info:
        call(session, _url(upstream, "/slow"), timeout=(2.0, 0.2))
    assert not info.value.nothing_sent  # Infobip may have acted on it
    time.sleep(0.8)  # the handler finishes; a retry would have arrived by now
    assert [path for path, _, _ in upstream.requests] == ["/slow"]
    assert call(session, _url(upstream, "/ok")) == ANSWER


def test_a_refused_connection_is_a_connection_failure_not_a_timeout(upstream, session):
    url = _url(upstream, "/ok")
    _stop(upstream)
    with pytest.raises(ProviderUnavailable, match="failed: ConnectionError") as info:
        call(session, url)
    assert info.value.nothing_sent


def test_a_gzip_answer_is_decoded(upstream, session):
    assert call(session, _url(upstream, "/gzip")) == ANSWER


@pytest.mark.parametrize("path", ["/big", "/bomb"])
def test_an_oversized_answer_is_refused(upstream, session, path):
    with pytest.raises(ProviderUnavailable, match="larger than"):
        call(session, _url(upstream, path))
    assert call(session, _url(upstream, "/ok")) == ANSWER


def test_an_answer_shorter_than_its_content_length_is_refused(upstream, session):
    with pytest.raises(ProviderUnavailable, match="failed"):
        call(session, _url(upstream, "/truncated"))


def test_a_redirect_is_answered_not_followed(upstream, session):
    with pytest.raises(ProviderUnavailable, match="answered 302"):
        call(session, _url(upstream, "/redirect"))
    assert len(upstream.requests) == 1


# -- the API key ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sekrit-01\n", "sekrit-01\r\nX-Injected: 1", "sekrit-01\r"])
def test_an_api_key_that_cannot_be_a_header_is_a_misconfiguration_that_never_shows_it(upstream, caplog, key):
    session = build_session(key)
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderMisconfigured) as info:
        call(session, _url(upstream, "/ok"))
    assert upstream.requests == []
    # Raised without the refused header in its message or its chain.
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "krit-01" not in str(info.value) + repr(info.value) + caplog.text


@pytest.mark.parametrize("key", ["sekrit-01\n", " sekrit-01", "sekrit\x00-01", "sékrit-01", "sekrit 01"])
def test_the_provider_never_sends_a_key_it_would_not_pass_in_a_check(upstream, caplog, key):
    provider = InfobipProvider(api_key=key, base_url=_url(upstream, ""), application_id="A", message_id="M")
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderMisconfigured, match="API key"):
        provider.send("+14155552671")
    assert upstream.requests == []
    assert "krit" not in caplog.text


# -- proxies -------------------------------------------------------------------------


@pytest.fixture
def clean_proxy_environment(monkeypatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


def _provider(base_url: str, **options: Any) -> InfobipProvider:
    return InfobipProvider(api_key="test-key", base_url=base_url, application_id="A", message_id="M", **options)


def test_the_proxy_the_environment_names_is_used(clean_proxy_environment, monkeypatch, upstream):
    proxy = _serve()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{proxy.server_address[1]}")
        # The emulator's loopback host: the request goes to the proxy, never to this port.
        assert _provider("http://127.0.0.1:9").send("+14155552671").pin_id == "P1"
        ((path, headers, _),) = proxy.requests
        assert path == "http://127.0.0.1:9/2fa/2/pin"
        assert headers["Proxy-Authorization"].startswith("Basic ")
        assert headers["Authorization"] == "App test-key"
    finally:
        _stop(proxy)


def test_no_proxy_and_the_proxies_option_win_over_the_environment(clean_proxy_environment, monkeypatch, upstream):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert _provider(_url(upstream, "")).send("+14155552671").pin_id == "P1"
    monkeypatch.delenv("NO_PROXY")
    assert _provider(_url(upstream, ""), proxies={}).send("+14155552671").pin_id == "P1"
    assert len(upstream.requests) == 2


def test_a_proxy_that_cannot_be_reached_is_unavailable_and_its_credentials_never_logged(
    clean_proxy_environment, caplog
):
    provider = _provider("http://127.0.0.1:9", proxies={"http": "http://user:s3cr3t-proxy@127.0.0.1:9"})
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderUnavailable) as info:
        provider.send("+14155552671")
    assert "s3cr3t-proxy" not in caplog.text + str(info.value) + repr(provider)


def test_netrc_credentials_never_replace_the_api_key(tmp_path, monkeypatch, upstream):
    netrc = tmp_path / ".netrc"
    netrc.write_text("default login someone password other-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    _provider(_url(upstream, "")).send("+14155552671")
    ((_, headers, _),) = upstream.requests
    assert headers["Authorization"] == "App test-key"


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
    _stop(server)


def test_a_certificate_from_an_unknown_issuer_is_refused(tls_upstream, session):
    with pytest.raises(ProviderUnavailable, match="SSLError"):
        call(session, _url(tls_upstream, "/ok", "https", "localhost"))
    assert tls_upstream.requests == []


def test_the_ca_bundle_the_environment_names_is_trusted_for_its_host_name_only(tls_upstream, certificate, monkeypatch):
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    session = build_session("test-key")
    assert call(session, _url(tls_upstream, "/ok", "https", "localhost")) == ANSWER
    with pytest.raises(ProviderUnavailable, match="SSLError"):
        call(session, _url(tls_upstream, "/ok", "https", "127.0.0.1"))
    assert len(tls_upstream.requests) == 1


def test_plain_tcp_that_is_not_tls_is_refused(session):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(ProviderUnavailable):
            call(session, f"https://localhost:{port}/ok", timeout=(0.5, 0.5))
