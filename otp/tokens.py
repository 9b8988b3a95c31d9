"""Signed, short-lived, single-use proofs that a request's sender verified a phone number.

A successful verify returns ``verificationToken``: the phone, the purpose and
a random id, signed with Django's signing framework (``SECRET_KEY``) under a
salt of its own and timestamped. Another view accepts it as proof with
:class:`otp.api.permissions.PhoneVerified` or :func:`read_token`.

A token is accepted once: its use is recorded under its id (a unique row of
``VerificationTokenUse``), so of two parallel uses exactly one wins and anyone
who sees the token later cannot replay it. ``VERIFICATION_TOKEN_SINGLE_USE``
turns this off.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from otp.conf import otp_settings
from otp.exceptions import InvalidToken as InvalidToken  # its earlier home, kept for importers
from otp.exceptions import OtpConfigurationError
from otp.models import VerificationTokenUse

SALT = "otp.tokens.verified-phone"
#: Bytes of randomness in a token's id (22 characters, within ``VerificationTokenUse.token_id``).
ID_BYTES = 16


@dataclass(frozen=True)
class VerifiedPhone:
    """What a valid token proves: the ``phone`` (E.164) was verified for the ``purpose``."""

    phone: str
    purpose: str


def make_token(phone: str, purpose: str) -> str:
    """A signed token proving that ``phone`` was verified for ``purpose`` (what a successful verify returns)."""
    # The random id makes every token unique, so its one use can be recorded.
    payload = {"phone": phone, "purpose": purpose, "id": secrets.token_urlsafe(ID_BYTES)}
    return signing.dumps(payload, salt=SALT, compress=False)


def read_token(
    token: str, *, purpose: str | None = None, max_age: int | None = None, consume: bool = False
) -> VerifiedPhone:
    """Return what ``token`` proves, or raise :class:`InvalidToken`.

    A token already used is refused. With ``consume``, this read is the
    token's one use: call it where the token is acted on. A view that fails
    after it asks the user for a new code (unless the use was rolled back with
    the view's own transaction). With ``VERIFICATION_TOKEN_SINGLE_USE`` off
    nothing is recorded or refused for use.

    :param purpose: the purpose the token must carry (any when None).
    :param max_age: seconds; defaults to ``VERIFICATION_TOKEN_MAX_AGE_SECONDS``.
    :param consume: record the use; of parallel uses exactly one succeeds.
    :raises OtpConfigurationError: ``VERIFICATION_TOKEN_MAX_AGE_SECONDS`` is not a positive integer.
    """
    lifetime = _lifetime()
    if not isinstance(token, str) or not token or len(token) > 512:
        raise InvalidToken("missing or malformed token")
    age = max_age if max_age is not None else lifetime
    try:
        data = signing.loads(token, salt=SALT, max_age=age)
    except signing.SignatureExpired as err:
        raise InvalidToken("expired token") from err
    except signing.BadSignature as err:
        raise InvalidToken("invalid token") from err
    if not isinstance(data, dict) or not isinstance(data.get("phone"), str):
        raise InvalidToken("invalid token")
    token_id = data.get("id")
    if not isinstance(token_id, str) or not token_id:
        raise InvalidToken("invalid token")  # signed before tokens had ids: it cannot be used once only
    proof = VerifiedPhone(phone=data["phone"], purpose=str(data.get("purpose", "")))
    if purpose is not None and proof.purpose != purpose:
        raise InvalidToken("token for another purpose")
    if otp_settings.VERIFICATION_TOKEN_SINGLE_USE:
        if consume:
            # Remembered for as long as any reader could still accept the token.
            _record_use(token_id, timezone.now() + timedelta(seconds=max(age, lifetime)))
        elif VerificationTokenUse.objects.filter(token_id=token_id).exists():
            raise InvalidToken("token already used")
    return proof


def _lifetime() -> int:
    lifetime = otp_settings.VERIFICATION_TOKEN_MAX_AGE_SECONDS
    # Fail closed (otp.E030 says it at startup): None would let signing accept a token for ever.
    if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
        raise OtpConfigurationError("OTP['VERIFICATION_TOKEN_MAX_AGE_SECONDS'] must be a positive integer.")
    return lifetime


def _record_use(token_id: str, expires_at: datetime) -> None:
    """Record the token's use; the unique id lets exactly one of parallel uses insert."""
    try:
        # A savepoint inside a caller's transaction: the losing insert must not break it.
        with transaction.atomic():
            VerificationTokenUse.objects.create(token_id=token_id, expires_at=expires_at)
    except IntegrityError as err:
        raise InvalidToken("token already used") from err
