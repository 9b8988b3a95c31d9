"""What the HTML pages keep in the visitor's session, and the helper that hands a verified number on.

Two entries, each under its own key:

- the pending verification (the number a code went to, its purpose, the
  ``next`` URL and when the code expires), written only once a send
  succeeded, so a visitor who merely opens the start page gets no session;
  it ends when the code is verified or expires;
- the verified number, as the same signed token ``POST /verify-otp``
  answers (:mod:`otp.tokens`), bound to the user who was logged in (or
  nobody), for the site's next view to read once with
  :func:`pop_verified_phone`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from otp.conf import otp_settings
from otp.limits.clock import now_seconds
from otp.tokens import InvalidToken, VerifiedPhone, read_token

PENDING_KEY = "otp_web_pending"
VERIFIED_KEY = "otp_web_verified"
#: The longest ``next`` URL kept; anything longer is not a page of the site.
MAX_NEXT_LENGTH = 2048


@dataclass(frozen=True)
class Pending:
    """A code on its way to ``phone`` (E.164) for ``purpose``."""

    phone: str
    purpose: str
    #: How the code travels (a resend goes the same way).
    channel: str
    next_url: str
    #: Unix time after which the code can no longer verify.
    expires: int
    #: What the code page says once: ``"sent"``, ``"resent"`` or ``""``.
    notice: str = ""


def start_pending(request: HttpRequest, phone: str, purpose: str, channel: str, next_url: str) -> None:
    """Remember a code just sent (this is what creates an anonymous visitor's session)."""
    request.session[PENDING_KEY] = {
        "phone": phone,
        "purpose": purpose,
        "channel": channel,
        "next": next_url if len(next_url) <= MAX_NEXT_LENGTH else "",
        "expires": now_seconds() + otp_settings.CODE_TTL_SECONDS,
        "notice": "sent",
    }


def renew_pending(request: HttpRequest, pending: Pending) -> None:
    """After a resend: the code (or a new one, if none was live) verifies for another ``CODE_TTL_SECONDS``."""
    request.session[PENDING_KEY] = {
        "phone": pending.phone,
        "purpose": pending.purpose,
        "channel": pending.channel,
        "next": pending.next_url,
        "expires": now_seconds() + otp_settings.CODE_TTL_SECONDS,
        "notice": "resent",
    }


def get_pending(request: HttpRequest) -> Pending | None:
    """The pending verification, or None; an expired one is dropped."""
    data = request.session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return None
    try:
        pending = Pending(
            phone=str(data["phone"]),
            purpose=str(data["purpose"]),
            channel=str(data["channel"]),
            next_url=str(data.get("next") or ""),
            expires=int(data["expires"]),
            notice=str(data.get("notice") or ""),
        )
    except (KeyError, TypeError, ValueError):
        pending = None
    if pending is None or pending.expires <= now_seconds():
        del request.session[PENDING_KEY]
        return None
    return pending


def take_notice(request: HttpRequest, pending: Pending) -> str:
    """The pending verification's one-time notice; it is shown once."""
    if pending.notice:
        request.session[PENDING_KEY] = {**request.session[PENDING_KEY], "notice": ""}
    return pending.notice


def complete(request: HttpRequest, token: str) -> None:
    """The code verified: end the pending state, give the session a new key, keep the proof.

    The new key means a session id seen before the verification (a fixated
    one, for instance) does not carry the verified number.
    """
    request.session.pop(PENDING_KEY, None)
    request.session.cycle_key()
    request.session[VERIFIED_KEY] = {"token": token, "user": _user_key(request)}


def pop_verified_phone(request: HttpRequest, *, purpose: str | None = None) -> VerifiedPhone | None:
    """The number this session verified through the HTML pages, read once; None when there is none.

    Call it in the view the visitor lands on after verifying (``next``, or
    ``OTP["WEB_SUCCESS_URL"]``)::

        from otp.web.session import pop_verified_phone

        def add_phone(request):
            proof = pop_verified_phone(request, purpose="phone_change")
            if proof is None:
                return redirect(f"{reverse('otp_web:start')}?next={request.path}")
            request.user.profile.phone = proof.phone   # "+14155552671"
            ...

    The proof is the token ``POST /verify-otp`` answers, kept in the session:
    it lives ``VERIFICATION_TOKEN_MAX_AGE_SECONDS`` and is used up by this
    call, whatever its outcome (with ``VERIFICATION_TOKEN_SINGLE_USE``, of
    parallel requests exactly one gets it). It is returned only to the user
    who was logged in when the code was verified (or, if nobody was, only
    while nobody is).

    :param purpose: the purpose the code must have been sent for (any when None).
    :returns: the :class:`~otp.tokens.VerifiedPhone` (``phone``, ``purpose``), or None.
    """
    data = request.session.pop(VERIFIED_KEY, None)
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        return None
    if data.get("user") != _user_key(request):
        return None
    try:
        return read_token(data["token"], purpose=purpose, consume=True)
    except InvalidToken:
        return None


def _user_key(request: HttpRequest) -> str | None:
    user: Any = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)
