"""A ``requests`` transport adapter that sends on kept ``http.client`` connections.

Every call to Infobip goes through ``HTTPAdapter.send``, which hands the
request to urllib3, which hands it to ``http.client``. For the one kind of
call this client makes (a prepared request with a bytes body, no proxy, no
client certificate, no redirects, no streaming) the layers in between
cost more than a third of the call's CPU. This adapter
keeps ``requests``' interface, a :class:`~requests.PreparedRequest` in and a
:class:`~requests.Response` out, with ``requests``' exceptions, and does the
rest with ``http.client`` on a pool of kept connections: 35-40 % less CPU
per call, about 0.5 ms per send + verify in one thread
(``docs/performance.md``). A call it does not cover goes to
``HTTPAdapter.send`` unchanged.

What it keeps from the stack it replaces:

- TLS: certificates checked against ``requests``' CA bundle (certifi), the
  host name checked, TLS 1.2 or newer.
- Timeouts: ``(connect, read)``; the connect timeout covers the TLS
  handshake. They raise ``ConnectTimeout`` and ``ReadTimeout``.
- Retries: a connection that could not be made is tried again
  ``max_retries.connect`` times; a request that was sent never is. A kept
  connection the server has closed is dropped before it is used.
- No redirect is followed (``http.client`` never follows one).

Tests that mock ``requests`` with ``responses`` patch this class's ``send``:
``responses.RequestsMock(target="otp.providers.transport.KeepAliveAdapter.send")``.
"""

from __future__ import annotations

import http.client
import queue
import ssl
import threading
import zlib
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers

from otp.net import has_input

#: An answer larger than this is refused: Infobip's are a few hundred bytes.
MAX_RESPONSE_BYTES = 1024 * 1024

_Origin = tuple[str, str, int]


class KeepAliveAdapter(HTTPAdapter):
    """``HTTPAdapter`` with a lean path for plain requests on kept connections."""

    def __init__(self, pool_maxsize: int = 10, **kwargs: Any) -> None:
        super().__init__(pool_maxsize=pool_maxsize, **kwargs)
        self._maxsize = pool_maxsize
        self._idle: dict[_Origin, queue.LifoQueue[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> Response:
        timeouts = _timeouts(timeout)
        body = request.body
        if (
            stream
            or verify is not True
            or cert
            or proxies
            or timeouts is None
            or not (body is None or isinstance(body, bytes))
            or not request.url
            or not request.method
        ):
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        url = urlsplit(request.url)
        origin = (url.scheme, url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        connect_timeout, read_timeout = timeouts
        conn = self._checkout(origin, connect_timeout, request)
        try:
            conn.sock.settimeout(read_timeout)
            conn.request(request.method, path, body, dict(request.headers))
            answer = conn.getresponse()
            content = answer.read(MAX_RESPONSE_BYTES + 1)
        except TimeoutError as err:
            conn.close()
            raise requests.ReadTimeout(err, request=request) from err
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise requests.ConnectionError(err, request=request) from err
        if len(content) > MAX_RESPONSE_BYTES:
            conn.close()
            raise requests.ConnectionError(f"answer larger than {MAX_RESPONSE_BYTES} bytes", request=request)
        if answer.will_close:
            conn.close()
        else:
            self._checkin(origin, conn)
        return self._response(request, answer, content)

    def close(self) -> None:
        with self._lock:
            pools, self._idle = list(self._idle.values()), {}
        for pool in pools:
            while True:
                try:
                    pool.get_nowait().close()
                except queue.Empty:
                    break
        super().close()

    # -- connections -------------------------------------------------------------

    def _pool(self, origin: _Origin) -> queue.LifoQueue[http.client.HTTPConnection]:
        pool = self._idle.get(origin)
        if pool is None:
            with self._lock:
                pool = self._idle.setdefault(origin, queue.LifoQueue(self._maxsize))
        return pool

    def _checkout(self, origin: _Origin, connect_timeout: float | None, request: PreparedRequest) -> Any:
        pool = self._pool(origin)
        while True:
            try:
                conn = pool.get_nowait()
            except queue.Empty:
                break
            if _usable(conn):
                return conn
            conn.close()
        attempts = 1 + max(0, int(getattr(self.max_retries, "connect", 0) or 0))
        for attempt in range(attempts):
            conn = self._new_connection(origin, connect_timeout)
            try:
                conn.connect()
                return conn
            except ssl.SSLError as err:  # a bad certificate does not get better on a retry
                conn.close()
                raise requests.exceptions.SSLError(err, request=request) from err
            except TimeoutError as err:
                conn.close()
                if attempt + 1 == attempts:
                    raise requests.ConnectTimeout(err, request=request) from err
            except OSError as err:
                conn.close()
                if attempt + 1 == attempts:
                    raise requests.ConnectionError(err, request=request) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkin(self, origin: _Origin, conn: http.client.HTTPConnection) -> None:
        try:
            self._pool(origin).put_nowait(conn)
        except queue.Full:
            conn.close()

    def _new_connection(self, origin: _Origin, connect_timeout: float | None) -> http.client.HTTPConnection:
        scheme, host, port = origin
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=connect_timeout, context=self._tls_context())
        if scheme != "http":
            raise requests.exceptions.InvalidSchema(f"no connection adapter for {scheme!r}")
        return http.client.HTTPConnection(host, port, timeout=connect_timeout)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(cafile=DEFAULT_CA_BUNDLE_PATH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._tls = context
        return self._tls

    # -- answers -----------------------------------------------------------------

    def _response(self, request: PreparedRequest, answer: http.client.HTTPResponse, content: bytes) -> Response:
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for name, value in answer.getheaders():
            # Repeated headers are joined, as urllib3 does.
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        response = Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = headers
        response.encoding = get_encoding_from_headers(headers)
        response._content = _decoded(content, headers.get("Content-Encoding", ""), request)
        response.url = request.url or ""
        response.request = request
        response.connection = self
        return response


def _timeouts(timeout: Any) -> tuple[float | None, float | None] | None:
    """``(connect, read)`` from what ``requests`` accepts, or None for a kind this adapter leaves to urllib3."""
    if isinstance(timeout, tuple) and len(timeout) == 2:
        return timeout[0], timeout[1]
    if timeout is None or (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)):
        return timeout, timeout
    return None


def _usable(conn: http.client.HTTPConnection) -> bool:
    """True when a kept connection is still open and has nothing to read.

    An idle HTTP/1.1 connection has nothing to say: if its socket is readable,
    the server closed it (or sent something unasked), and a request on it
    would fail after being sent.
    """
    sock = conn.sock
    if sock is None:
        return False
    try:
        return not has_input(sock.fileno())
    except (OSError, ValueError):
        return False


def _decoded(content: bytes, encoding: str, request: PreparedRequest) -> bytes:
    """The body without its Content-Encoding (the client asks for none; a server may still send one)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return content
    if encoding in ("gzip", "x-gzip"):
        wbits = [16 + zlib.MAX_WBITS]
    elif encoding == "deflate":
        wbits = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib-wrapped as the RFC says, or raw as some servers send
    else:
        raise requests.exceptions.ContentDecodingError(f"unsupported Content-Encoding {encoding!r}", request=request)
    for bits in wbits:
        decoder = zlib.decompressobj(bits)
        try:
            # Bounded: a small compressed answer must not inflate without limit.
            decoded = decoder.decompress(content, MAX_RESPONSE_BYTES + 1)
        except zlib.error as err:
            if bits == wbits[-1]:
                raise requests.exceptions.ContentDecodingError(err, request=request) from err
            continue
        if len(decoded) > MAX_RESPONSE_BYTES or decoder.unconsumed_tail:
            raise requests.exceptions.ContentDecodingError(
                f"answer larger than {MAX_RESPONSE_BYTES} bytes once decoded", request=request
            )
        return decoded
    raise AssertionError("unreachable")  # pragma: no cover
