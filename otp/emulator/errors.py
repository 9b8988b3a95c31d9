"""Errors the emulator answers with, in Infobip's legacy envelope (§4).

Every non-2xx body is ``{"requestError": {"serviceException": {...}}}``; code
anywhere in the emulator raises :class:`ApiError` and the HTTP layer renders it.
"""

from __future__ import annotations

from typing import Any

# HTTP status -> (messageId, text), as in Infobip's shared OAS responses.
_STANDARD = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHORIZED", "Invalid login details"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    413: ("BAD_REQUEST", "Request body too large"),
    429: ("TOO_MANY_REQUESTS", "Too many requests"),
    500: ("GENERAL_ERROR", "Something went wrong. Please contact support."),
}

ValidationErrors = dict[str, list[str]]


class ApiError(Exception):
    """An answer other than success; ``headers`` are extra response headers."""

    def __init__(
        self,
        status: int,
        text: str | None = None,
        *,
        validation_errors: ValidationErrors | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        message_id, default_text = _STANDARD.get(status, _STANDARD[500])
        super().__init__(text or default_text)
        self.status = status
        self.message_id = message_id
        self.text = text or default_text
        self.validation_errors = validation_errors
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        exception: dict[str, Any] = {"messageId": self.message_id, "text": self.text}
        if self.validation_errors:
            exception["validationErrors"] = self.validation_errors
        return {"requestError": {"serviceException": exception}}


def bad_request(errors: ValidationErrors, text: str = "Bad request") -> ApiError:
    return ApiError(400, text, validation_errors=errors)


def not_found(text: str = "Not found") -> ApiError:
    return ApiError(404, text)
