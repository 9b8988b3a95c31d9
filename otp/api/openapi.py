"""OpenAPI description of the endpoints, used when drf-spectacular is installed.

The app does not need drf-spectacular: without it the decorators below do
nothing. With it (``pip install ...[openapi]``), every status code and body of
the endpoints is in the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from rest_framework import serializers

spectacular: ModuleType | None
try:
    from drf_spectacular import utils as spectacular
except ImportError:  # pragma: no cover - exercised by sites without the extra
    spectacular = None


def extend_schema_field(spec: dict[str, Any]) -> Callable[[Any], Any]:
    """drf-spectacular's decorator of the same name, or nothing without it."""
    if spectacular is None:
        return lambda target: target
    return spectacular.extend_schema_field(spec)


__all__ = ["extend_schema_field", "send_schema", "strip_trailing_slashes", "verify_schema"]

_OTP_PATHS = ("send-otp/", "resend-otp/", "verify-otp/")


def strip_trailing_slashes(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document ``/send-otp``, the path clients call.

    The URL patterns accept both spellings (``send-otp/?``); the schema names one.
    """
    paths = result.get("paths", {})
    result["paths"] = {(path[:-1] if path.endswith(_OTP_PATHS) else path): item for path, item in paths.items()}
    return result


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class VerifiedSerializer(serializers.Serializer):
    message = serializers.CharField()
    verificationToken = serializers.CharField(  # noqa: N815 (wire name)
        help_text="Signed proof of the verified number, accepted once within VERIFICATION_TOKEN_MAX_AGE_SECONDS."
    )


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A human message, in the request's language.")
    code = serializers.CharField(help_text="A stable machine-readable code.")


def _error(description: str) -> Any:
    assert spectacular is not None  # only called when it is installed
    return spectacular.OpenApiResponse(response=ErrorSerializer, description=description)


def _common_errors() -> dict[int, Any]:
    return {
        400: _error("Bad input (nothing was sent or changed), or a number that may not or cannot receive codes."),
        403: _error("CSRF check failed for a session-authenticated request."),
        405: _error("Only POST is allowed."),
        413: _error("Request body too large."),
        415: _error("The body must be application/json."),
        429: _error("A limit was hit; see Retry-After. The same body for every limit."),
        500: _error("A server bug (logged, never detailed)."),
        503: _error("The provider, the database or the send budget is unavailable; see Retry-After."),
    }


def send_schema(request: type[serializers.Serializer], summary: str) -> Callable[[Any], Any]:
    if spectacular is None:
        return lambda target: target
    return spectacular.extend_schema(
        summary=summary,
        description='Errors answer {"error", "code"}; the PIN and the provider\'s pinId never appear.',
        tags=["otp"],
        request=request,
        responses={
            200: spectacular.OpenApiResponse(response=MessageSerializer, description="Accepted."),
            **_common_errors(),
        },
        examples=[spectacular.OpenApiExample("Send", value={"phoneNumber": "+14155552671"}, request_only=True)],
    )


def verify_schema(request: type[serializers.Serializer]) -> Callable[[Any], Any]:
    if spectacular is None:
        return lambda target: target
    return spectacular.extend_schema(
        summary="Verify a PIN",
        description="Every failed verification gives the same 401 answer.",
        tags=["otp"],
        request=request,
        responses={
            200: spectacular.OpenApiResponse(response=VerifiedSerializer, description="Verified."),
            401: _error("Wrong, expired, used, superseded, never sent or exhausted: one answer for all."),
            **_common_errors(),
        },
        examples=[
            spectacular.OpenApiExample(
                "Verify", value={"phoneNumber": "+14155552671", "pin": "123456"}, request_only=True
            )
        ],
    )
