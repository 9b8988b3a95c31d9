"""Destination policy: which countries and number types may receive a code.

Checked before any provider call. Premium-rate, shared-cost, toll-free and
similar numbers are how SMS pumping turns an OTP endpoint into revenue for
someone else, so only mobile-capable types are allowed by default.
"""

from __future__ import annotations

import phonenumbers
from django.utils.translation import gettext as _

from otp.conf import otp_settings
from otp.exceptions import DestinationNotAllowed
from otp.validators.phones import region_and_type

_TYPE_NAMES = {
    value: name
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}


def check_destination(phone: str) -> str:
    """Return the region of the E.164 ``phone``, or raise :class:`DestinationNotAllowed`."""
    region, number_type = region_and_type(phone)
    allowed_regions = otp_settings.ALLOWED_REGIONS
    if allowed_regions is not None and region not in {r.upper() for r in allowed_regions}:
        raise DestinationNotAllowed(_("Phone numbers from this country are not supported."), reason="region")
    allowed_types = {t.upper() for t in otp_settings.ALLOWED_NUMBER_TYPES or ()}
    if _TYPE_NAMES.get(number_type, "UNKNOWN") not in allowed_types:
        raise DestinationNotAllowed(_("This type of phone number cannot receive codes."), reason="number_type")
    return region
