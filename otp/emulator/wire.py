"""Just enough HTTP/1.1 for JSON clients: one request head in, one answer out.

Bodies need ``Content-Length`` (chunked requests are refused with 501);
keep-alive follows the HTTP/1.0 and 1.1 defaults and ``Connection``.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qsl

from otp.emulator.api import Answer, Request
from otp.emulator.formats import compact_json

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}


class HttpError(Exception):
    """The request cannot be read; answered with ``status`` and the connection closed."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def parse_head(head: bytes) -> tuple[Request, int, bool]:
    """(request without body, Content-Length, keep-alive) from the bytes up to CRLFCRLF."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise HttpError(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise HttpError(501, "chunked request bodies are not supported")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise HttpError(400, "bad Content-Length")
    length = int(length_text)
    if length > MAX_BODY_BYTES:
        raise HttpError(413, "request body too large")
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    path, _, query = target.partition("?")
    request = Request(method, path, dict(parse_qsl(query)) if query else {}, headers)
    return request, length, keep_alive


def encode(answer: Answer, *, keep_alive: bool) -> bytes:
    """The full response, head and body."""
    body = answer.body
    if body is None:
        body = b"" if answer.data is None else compact_json(answer.data)
    status_line = _STATUS_LINES.get(answer.status) or f"HTTP/1.1 {answer.status} Status\r\n".encode()
    head = [f"Content-Type: {answer.content_type}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in answer.headers.items()]
    if not keep_alive:
        head.append("Connection: close")
    return status_line + ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
