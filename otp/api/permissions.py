"""A DRF permission that requires proof of a verified phone number.

Send the ``verificationToken`` from ``POST /verify-otp`` in the
``X-Verification-Token`` header (or a ``verificationToken`` body field)::

    class ChangePhoneView(APIView):
        permission_classes = [PhoneVerified.for_purpose("phone_change")]

        def post(self, request):
            request.verified_phone  # "+14155552671"

The check uses the token up (see :mod:`otp.tokens`): a view that fails after
it asks the user for a new code. List it last in ``permission_classes``, so a
request another permission refuses leaves the token unused.
"""

from __future__ import annotations

import warnings
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from otp.tokens import InvalidToken, read_token

HEADER = "HTTP_X_VERIFICATION_TOKEN"


def token_from_request(request: Request) -> str | None:
    token = request.META.get(HEADER)
    if token:
        return token
    data = getattr(request, "data", None)
    if isinstance(data, dict) and isinstance(data.get("verificationToken"), str):
        return data["verificationToken"]
    return None


class PhoneVerified(BasePermission):
    """Grants access, once per token, when the request carries a valid one; sets ``request.verified_phone``.

    Use :meth:`for_purpose`; the bare class (any purpose) is deprecated.
    """

    message = _("A valid phone verification token is required.")
    purpose: str | None = None

    @classmethod
    def for_purpose(cls, purpose: str) -> type[PhoneVerified]:
        """A subclass that accepts only tokens issued for ``purpose``."""
        return type(f"PhoneVerifiedFor{purpose.title().replace('_', '')}", (cls,), {"purpose": purpose})

    def has_permission(self, request: Request, view: Any) -> bool:
        if self.purpose is None:
            warnings.warn(
                "PhoneVerified without a purpose accepts a token of any purpose; from the next minor version it "
                "accepts only OTP['DEFAULT_PURPOSE']. Use PhoneVerified.for_purpose(...).",
                DeprecationWarning,
                stacklevel=2,
            )
        try:
            proof = read_token(token_from_request(request) or "", purpose=self.purpose, consume=True)
        except InvalidToken:
            return False
        request.verified_phone = proof.phone  # type: ignore[attr-defined]
        request.verified_phone_purpose = proof.purpose  # type: ignore[attr-defined]
        return True
