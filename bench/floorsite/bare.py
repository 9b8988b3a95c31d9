"""A WSGI callable that reads the body and answers the app's success body: gunicorn's own cost."""

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"message":"OTP sent successfully."}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", HEADERS)
    return [BODY]
