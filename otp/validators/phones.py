"""Parse and normalise phone numbers to E.164 with libphonenumber."""

from __future__ import annotations

import enum
import re
import unicodedata
from functools import lru_cache
from typing import Any

import phonenumbers
from django.utils.translation import gettext as _

from otp.exceptions import InvalidPhoneNumber

# Generous for formatting characters, far below anything abusive.
MAX_RAW_LENGTH = 64
# After NFKC: at most one leading "+", then digits (of any script, which
# libphonenumber reads as the same digits) and the separators people type.
# libphonenumber alone would take "++1...", "tel:", extensions and letters.
_PHONE_CHARACTERS = re.compile(r"\+?[\d .()-]+")


class _Refusal(enum.Enum):
    NOT_INTERNATIONAL = enum.auto()
    NOT_VALID = enum.auto()


def normalize_phone(raw: Any, default_region: str | None = None) -> str:
    """Return ``raw`` as an E.164 string, or raise :class:`InvalidPhoneNumber`.

    ``+1 415 555 2671``, ``+1 (415) 555-2671`` and ``+14155552671`` all give
    ``+14155552671``; so do full-width forms and non-breaking spaces. A number
    without ``+`` needs ``default_region``. Anything but digits, spaces,
    ``-``, ``.``, parentheses and one leading ``+`` is refused.
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber(_("phoneNumber must be a string."))
    if not raw.strip():
        raise InvalidPhoneNumber(_("phoneNumber is required."))
    result = _parse(raw, default_region) if len(raw) <= MAX_RAW_LENGTH else _Refusal.NOT_VALID
    if result is _Refusal.NOT_INTERNATIONAL:
        raise InvalidPhoneNumber(
            _("phoneNumber must be in international format, starting with + and the country code.")
        )
    if result is _Refusal.NOT_VALID:
        raise InvalidPhoneNumber(_("phoneNumber is not a valid phone number."))
    return result


# A request parses its number two or three times (input, service, destination
# policy) and a verify repeats its send's: normalising, parsing and validating
# is the costly part, so the answers are kept per raw input, bounded.
@lru_cache(maxsize=4096)
def _parse(raw: str, default_region: str | None) -> str | _Refusal:
    text = unicodedata.normalize("NFKC", raw).strip(" ")
    if not text.startswith("+") and not default_region:
        return _Refusal.NOT_INTERNATIONAL
    if not _PHONE_CHARACTERS.fullmatch(text):
        return _Refusal.NOT_VALID
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return _Refusal.NOT_VALID
    if not phonenumbers.is_valid_number(parsed):
        return _Refusal.NOT_VALID
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def region_and_type(e164: str) -> tuple[str, int]:
    """The region code (``ZZ`` when none) and libphonenumber's number type of a valid E.164 number."""
    parsed = phonenumbers.parse(e164)
    return phonenumbers.region_code_for_number(parsed) or "ZZ", phonenumbers.number_type(parsed)
