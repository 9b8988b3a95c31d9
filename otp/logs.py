"""Logging helpers: JSON lines for production, and a per-request access record.

``JsonFormatter`` writes one JSON object per line with the time, level,
logger and message, plus the fields of a security event (``otp_event``) or of
a request record (``request``). ``RequestLogMiddleware`` gives every request
an id (the client's safe ``X-Request-ID`` or a new one, echoed back) and logs
one record with route, status and duration on the ``otp.request`` logger.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

from otp.events import _SAFE_REQUEST_ID

request_logger = logging.getLogger("otp.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for attribute in ("otp_event", "request"):
            fields = getattr(record, attribute, None)
            if isinstance(fields, dict):
                data.update(fields)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class RequestLogMiddleware:
    """One access record per request, tied to the app's security events by id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if _SAFE_REQUEST_ID.fullmatch(supplied or "") else uuid.uuid4().hex
        # The app's views read the id from here, so events and this record match.
        request.META["HTTP_X_REQUEST_ID"] = request_id
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        match = getattr(request, "resolver_match", None)
        fields = {
            "request_id": request_id,
            "method": request.method,
            "route": match.route if match else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        request_logger.log(
            level,
            "%s %s %s %.1fms",
            request.method,
            fields["route"] or "-",
            response.status_code,
            fields["duration_ms"],
            extra={"request": fields},
        )
        return response
