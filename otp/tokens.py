"""Signed, short-lived proofs that a request's sender verified a phone number.

A successful verify returns ``verificationToken``: the phone and the purpose,
signed with Django's signing framework (``SECRET_KEY``) under a salt of its
own and timestamped. Another view accepts it as proof with
:class:`otp.permissions.PhoneVerified` or :func:`read_token`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from otp.conf import otp_settings

SALT = "otp.tokens.verified-phone"


class InvalidToken(Exception):
    """The token is malformed, forged, expired or for another purpose."""


@dataclass(frozen=True)
class VerifiedPhone:
    phone: str
    purpose: str


def make_token(phone: str, purpose: str) -> str:
    return signing.dumps({"phone": phone, "purpose": purpose}, salt=SALT, compress=False)


def read_token(token: str, *, purpose: str | None = None, max_age: int | None = None) -> VerifiedPhone:
    """Return what ``token`` proves, or raise :class:`InvalidToken`.

    :param purpose: the purpose the token must carry (any when None).
    :param max_age: seconds; defaults to ``VERIFICATION_TOKEN_MAX_AGE_SECONDS``.
    """
    if not isinstance(token, str) or not token or len(token) > 512:
        raise InvalidToken("missing or malformed token")
    age = max_age if max_age is not None else otp_settings.VERIFICATION_TOKEN_MAX_AGE_SECONDS
    try:
        data = signing.loads(token, salt=SALT, max_age=age)
    except signing.SignatureExpired as err:
        raise InvalidToken("expired token") from err
    except signing.BadSignature as err:
        raise InvalidToken("invalid token") from err
    if not isinstance(data, dict) or not isinstance(data.get("phone"), str):
        raise InvalidToken("invalid token")
    proof = VerifiedPhone(phone=data["phone"], purpose=str(data.get("purpose", "")))
    if purpose is not None and proof.purpose != purpose:
        raise InvalidToken("token for another purpose")
    return proof
