"""Each exception class declares the answer a client gets, and the answer is the documented one."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from django.utils import translation

from otp import exceptions, tokens
from otp.api import parsers
from otp.api.responses import otp_exception_handler

HTTP_API = Path(__file__).resolve().parents[1] / "docs" / "http-api.md"

EXCEPTION_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == exceptions.__name__
    ),
    key=lambda cls: cls.__name__,
)
# Classes with no answer of their own: a bare OtpError is a bug, and an
# InvalidToken is turned into DRF's 403 by PhoneVerified (or a site's own view).
NO_ANSWER = {exceptions.OtpError, exceptions.InvalidToken}
ANSWERED = [cls for cls in EXCEPTION_CLASSES if cls not in NO_ANSWER]

# The fixed message of every kind, in English; malformed input shows its own text.
MESSAGES = {
    "invalid_or_expired": "Invalid or expired OTP.",
    "send_failed": "Unable to send a code to this number.",
    "rate_limited": "Too many requests. Please try again later.",
    "payload_too_large": "Request body is too large.",
    "provider_unavailable": "The verification service is temporarily unavailable. Please try again later.",
    "temporarily_unavailable": "The verification service is temporarily unavailable. Please try again later.",
}


def documented_answers() -> set[tuple[int, str]]:
    """The (status, code) pairs of the HTTP API page's "Error codes" table."""
    section = HTTP_API.read_text().split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    pairs: set[tuple[int, str]] = set()
    for row in re.findall(r"^\| ([0-9 /]+) \| (.+?) \|", section, flags=re.MULTILINE):
        statuses = [int(s) for s in row[0].split("/")]
        if len(statuses) > 1:  # "405 / 415 | `a` / `b`": pairwise
            codes = [re.findall(r"`([a-z_]+)`", part) for part in row[1].split(" / ")]
            pairs.update((status, code[0]) for status, code in zip(statuses, codes, strict=True))
        else:
            pairs.update((statuses[0], code) for code in re.findall(r"`([a-z_]+)`", row[1]))
    return pairs


def build(cls: type[Exception], message: str = "the cause, for the log") -> Exception:
    """An instance of ``cls``, its keyword-only arguments filled in."""
    keywords = {
        name: {"reason": "cause", "retry_after": 120}.get(name)
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty
    }
    return cls(message, **keywords)


def test_the_tree_is_found():
    names = {cls.__name__ for cls in ANSWERED}
    assert {"VerificationFailed", "RateLimited", "ProviderRateLimited", "OtpConfigurationError"} <= names


@pytest.mark.parametrize("cls", EXCEPTION_CLASSES, ids=lambda cls: cls.__name__)
def test_every_class_that_reaches_a_client_has_a_status_and_a_code(cls):
    if cls in NO_ANSWER:
        assert cls.http_status is None
        return
    assert isinstance(cls.http_status, int) and 400 <= cls.http_status < 600
    assert isinstance(cls.code, str) and re.fullmatch(r"[a-z_]+", cls.code)


@pytest.mark.parametrize("cls", ANSWERED, ids=lambda cls: cls.__name__)
def test_the_handler_answers_each_class_as_documented(cls):
    with translation.override("en"):
        response = otp_exception_handler(build(cls), {"view": None})
    assert (response.status_code, response.data["code"]) in documented_answers()
    assert set(response.data) == {"error", "code"}
    if issubclass(cls, exceptions.InvalidInput):
        assert response.data["error"] == "the cause, for the log"  # what to fix
    else:
        assert response.data["error"] == MESSAGES[response.data["code"]]  # never the cause


@pytest.mark.parametrize(
    ("exc", "retry_after"),
    [
        (exceptions.RateLimited("phone cooldown", retry_after=120), "120"),
        (exceptions.BudgetExhausted("hourly budget", retry_after=600), "600"),
        (exceptions.LimiterUnavailable("redis down"), "30"),
        (exceptions.ProviderRateLimited("429", retry_after=None), "30"),
        (exceptions.ProviderRateLimited("429", retry_after=5), "30"),
        (exceptions.ProviderRateLimited("429", retry_after=120), "120"),
        (exceptions.ProviderUnavailable("timeout"), None),
        (exceptions.VerificationFailed("expired"), None),
        (exceptions.InvalidInput("bad"), None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_retry_after(exc, retry_after):
    response = otp_exception_handler(exc, {"view": None})
    assert response.headers.get("Retry-After") == retry_after


def test_a_bare_otp_error_is_a_bug(caplog):
    try:
        raise exceptions.OtpError("no answer declared")
    except exceptions.OtpError as err:  # DRF calls the handler while handling the exception
        response = otp_exception_handler(err, {"view": None})
    assert response.status_code == 500 and response.data == {"error": "Internal server error.", "code": "server_error"}
    assert "no answer declared" in caplog.text  # logged with its traceback, never sent


def test_moved_classes_keep_their_earlier_import_paths():
    assert tokens.InvalidToken is exceptions.InvalidToken
    assert parsers.RequestTooLarge is exceptions.RequestTooLarge
