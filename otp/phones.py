"""Parse and normalise phone numbers to E.164 with libphonenumber."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import phonenumbers
from django.utils.translation import gettext as _

from otp.exceptions import InvalidPhoneNumber

# Generous for formatting characters, far below anything abusive.
MAX_RAW_LENGTH = 64


def normalize_phone(raw: Any, default_region: str | None = None) -> str:
    """Return ``raw`` as an E.164 string, or raise :class:`InvalidPhoneNumber`.

    ``+1 415 555 2671``, ``+1 (415) 555-2671`` and ``+14155552671`` all give
    ``+14155552671``. A number without ``+`` needs ``default_region``.
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber(_("phoneNumber must be a string."))
    if not raw.strip():
        raise InvalidPhoneNumber(_("phoneNumber is required."))
    if len(raw) > MAX_RAW_LENGTH or any(ch < " " or ch == "\x7f" for ch in raw):
        raise InvalidPhoneNumber(_("phoneNumber is not a valid phone number."))
    if not raw.lstrip().startswith(("+", "\uff0b")) and not default_region:  # ASCII or full-width plus
        raise InvalidPhoneNumber(
            _("phoneNumber must be in international format, starting with + and the country code.")
        )
    e164 = _e164_or_none(raw, default_region)
    if e164 is None:
        raise InvalidPhoneNumber(_("phoneNumber is not a valid phone number."))
    return e164


# A request parses its number two or three times (input, service, destination
# policy) and a verify repeats its send's: parsing and validating is the
# costly part of libphonenumber, so its answers are kept, bounded.
@lru_cache(maxsize=4096)
def _e164_or_none(raw: str, default_region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def region_and_type(e164: str) -> tuple[str, int]:
    """The region code (``ZZ`` when none) and libphonenumber's number type of a valid E.164 number."""
    parsed = phonenumbers.parse(e164)
    return phonenumbers.region_code_for_number(parsed) or "ZZ", phonenumbers.number_type(parsed)
