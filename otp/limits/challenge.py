"""The optional bot-friction step before a send: a CAPTCHA or attestation token.

A site sets ``OTP["SEND_CHALLENGE_VERIFIER"]`` to the dotted path of a callable
``verify(request, token) -> bool`` (for example one that asks reCAPTCHA or
Turnstile); clients then send ``"challengeToken"`` with ``/send-otp`` and
``/resend-otp``. It is a step-up beside the limits, never instead of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from otp import events
from otp.conf import otp_settings
from otp.exceptions import ChallengeFailed


def verifier() -> Callable[[HttpRequest, str], bool] | None:
    path = otp_settings.SEND_CHALLENGE_VERIFIER
    return import_string(path) if path else None


def check_challenge(request: Any, token: str | None, phone: str) -> None:
    """Raise :class:`ChallengeFailed` unless the configured verifier accepts ``token``."""
    verify = verifier()
    if verify is None:
        return
    try:
        passed = bool(token) and bool(verify(request, token or ""))
    except Exception:
        # A verifier that cannot decide does not let the send through.
        logging.getLogger(__name__).exception("send challenge verifier failed")
        passed = False
    if not passed:
        events.log_event(events.SEND_BLOCKED, phone=phone, reason="challenge_failed")
        raise ChallengeFailed(_("The challenge response is missing or invalid."))
