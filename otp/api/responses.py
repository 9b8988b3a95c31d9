"""Every error the app answers with: JSON ``{"error": ..., "code": ...}``.

``otp_exception_handler`` answers the app's exceptions with what their class
declares (:class:`otp.exceptions.HttpAnswer`), and DRF's and the database's
in the same shape, for the app's views. ``handler400/403/404/500`` give a site
the same shape for Django's own error pages (``handler404 = "otp.api.responses.handler404"``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from otp import flows
from otp.exceptions import (
    DEFAULT_RETRY_AFTER_SECONDS,
    INVALID_OTP,
    RATE_LIMITED,
    SEND_FAILED,
    SERVER_ERROR,
    UNAVAILABLE,
    HttpAnswer,
    OtpConfigurationError,
)

logger = logging.getLogger(__name__)

# Re-exported: the messages and the default wait are defined with the exceptions.
__all__ = [
    "DEFAULT_RETRY_AFTER_SECONDS",
    "INVALID_OTP",
    "RATE_LIMITED",
    "SEND_FAILED",
    "SERVER_ERROR",
    "UNAVAILABLE",
    "error_body",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "otp_exception_handler",
]


def error_body(message: Any, code: str) -> dict[str, str]:
    return {"error": str(message), "code": code}


def _drf_message(exc: drf_exceptions.APIException) -> tuple[str, str]:
    if isinstance(exc, drf_exceptions.ParseError):
        return str(_("Request body must be valid JSON.")), "invalid_json"
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return str(_("Content-Type must be application/json.")), "unsupported_media_type"
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return str(_("Method not allowed.")), "method_not_allowed"
    if isinstance(exc, drf_exceptions.Throttled):
        return str(RATE_LIMITED), "rate_limited"
    detail = exc.detail if isinstance(exc.detail, str) else exc.default_detail
    return str(detail), str(getattr(exc, "default_code", "error"))  # str(): lazy translations


def answer(exc: HttpAnswer) -> Response:
    """The answer the exception's class declares (status, code, message, ``Retry-After``)."""
    retry_after = exc.retry_after_seconds()
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(error_body(exc.public_message(), exc.code), status=exc.http_status, headers=headers)


def otp_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler for the app's views; every answer is ``{"error": ...}``."""
    if isinstance(exc, HttpAnswer) and exc.http_status is not None:
        if isinstance(exc, OtpConfigurationError):
            logger.error("OTP configuration error: %s", exc)
        return answer(exc)
    if isinstance(exc, (OperationalError, InterfaceError)):
        return answer(flows.database_unavailable(exc))
    if isinstance(exc, drf_exceptions.APIException):
        message, code = _drf_message(exc)
        headers: dict[str, str] = {}
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(int(wait) + 1)
        return Response(error_body(message, code), status=exc.status_code, headers=headers)
    # A bug: log it with its traceback, answer without one.
    logger.exception("Unhandled error in %s", type(context.get("view")).__name__)
    return Response(error_body(SERVER_ERROR, "server_error"), status=500)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(_("Bad request."), "bad_request"), status=400)


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(_("Forbidden."), "forbidden"), status=403)


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(_("Not found."), "not_found"), status=404)


def handler500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body(SERVER_ERROR, "server_error"), status=500)
