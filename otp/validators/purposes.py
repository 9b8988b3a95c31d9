"""Validate the optional ``purpose`` and ``channel`` of a request."""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

from otp.conf import otp_settings
from otp.exceptions import InvalidInput

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def is_slug(value: Any) -> bool:
    """Whether ``value`` can be a purpose: a short lowercase slug."""
    return isinstance(value, str) and _SLUG.fullmatch(value) is not None


def validate_purpose(raw: Any) -> str:
    """The purpose, or the default one when absent; a short lowercase slug."""
    if raw is None:
        return otp_settings.DEFAULT_PURPOSE
    if not is_slug(raw):
        raise InvalidInput(_("purpose must be a short lowercase word such as 'login'."))
    allowed = otp_settings.PURPOSES
    if allowed is not None and raw not in allowed:
        raise InvalidInput(_("purpose is not one of the allowed purposes."))
    return raw


def validate_channel(raw: Any) -> str:
    """``sms`` (the default when absent) or ``voice``, if the site allows it."""
    if raw is None:
        return "sms"
    if not isinstance(raw, str) or raw not in otp_settings.CHANNELS:
        allowed = ", ".join(repr(c) for c in otp_settings.CHANNELS)
        raise InvalidInput(_("channel must be one of %(channels)s.") % {"channels": allowed})
    return raw
