"""Validate PINs typed by users before anything else sees them."""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

from otp.exceptions import InvalidInput


def validate_pin(raw: Any, length: int) -> str:
    """Return ``raw`` if it is exactly ``length`` ASCII digits, else raise :class:`InvalidInput`.

    ``str.isdigit`` would accept Arabic-Indic or full-width digits; the
    provider would not, so they are refused here.
    """
    if not isinstance(raw, str):
        raise InvalidInput(_("pin must be a string."))
    if not re.fullmatch(f"[0-9]{{{length}}}", raw):
        raise InvalidInput(_("pin must be exactly %(length)d digits.") % {"length": length})
    return raw
