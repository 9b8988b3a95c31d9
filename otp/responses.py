"""Every error the app answers with: JSON ``{"error": ..., "code": ...}``.

``otp_exception_handler`` maps the app's exceptions and DRF's to that shape for
the app's views. ``handler400/403/404/500`` give a site the same shape for
Django's own error pages (``handler404 = "otp.responses.handler404"``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from otp import events
from otp.exceptions import (
    BudgetExhausted,
    InvalidInput,
    LimiterUnavailable,
    OtpConfigurationError,
    ProviderError,
    ProviderRateLimited,
    RateLimited,
    SendRejected,
    VerificationFailed,
)

logger = logging.getLogger(__name__)

INVALID_OTP = _("Invalid or expired OTP.")
SEND_FAILED = _("Unable to send a code to this number.")
UNAVAILABLE = _("The verification service is temporarily unavailable. Please try again later.")
SERVER_ERROR = _("Internal server error.")
RATE_LIMITED = _("Too many requests. Please try again later.")
# Coarse on purpose: a client learns "later", not the provider's exact window.
DEFAULT_RETRY_AFTER_SECONDS = 30


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


def otp_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler for the app's views; every answer is ``{"error": ...}``."""
    headers: dict[str, str] = {}
    if isinstance(exc, VerificationFailed):
        return Response(error_body(INVALID_OTP, exc.code), status=401)
    if isinstance(exc, InvalidInput):
        return Response(error_body(str(exc), exc.code), status=400)
    if isinstance(exc, SendRejected):
        return Response(error_body(SEND_FAILED, exc.code), status=400)
    if isinstance(exc, RateLimited):
        # One body for every limiter: the client learns nothing about which one.
        return Response(error_body(RATE_LIMITED, exc.code), status=429, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, (BudgetExhausted, LimiterUnavailable)):
        retry_after = getattr(exc, "retry_after", DEFAULT_RETRY_AFTER_SECONDS)
        return Response(
            error_body(UNAVAILABLE, "temporarily_unavailable"), status=503, headers={"Retry-After": str(retry_after)}
        )
    if isinstance(exc, ProviderError):
        if isinstance(exc, ProviderRateLimited):
            headers["Retry-After"] = str(max(exc.retry_after or 0, DEFAULT_RETRY_AFTER_SECONDS))
        return Response(error_body(UNAVAILABLE, exc.code), status=503, headers=headers)
    if isinstance(exc, OtpConfigurationError):
        logger.error("OTP configuration error: %s", exc)
        return Response(error_body(UNAVAILABLE, "provider_unavailable"), status=503)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is down, failing over, or a lock wait timed out.
        events.log_event(events.DATABASE_ERROR, level=logging.ERROR, error=type(exc.__cause__ or exc).__name__)
        return Response(
            error_body(UNAVAILABLE, "temporarily_unavailable"),
            status=503,
            headers={"Retry-After": str(DEFAULT_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, drf_exceptions.APIException):
        message, code = _drf_message(exc)
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
