"""System checks for the app's settings (ids ``otp.E0xx`` / ``otp.W0xx``).

Retired ids stay reserved. E010-E019 belong to the Infobip provider's
``check_options``.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from otp.conf import MAX_CODE_TTL_SECONDS, otp_settings
from otp.exceptions import OtpConfigurationError
from otp.providers import load_provider_class


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@register(Tags.security)
def check_provider(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        cls = load_provider_class(otp_settings.PROVIDER)
    except OtpConfigurationError as err:
        return [Error(
            f"No usable OTP provider: {err}",
            hint="Set OTP['PROVIDER'], e.g. 'otp.providers.infobip.InfobipProvider'.",
            id="otp.E001",
        )]
    if cls.is_development_only and not settings.DEBUG:
        return [Error(
            f"{cls.__name__} is configured while DEBUG is off: it sends no real SMS "
            "and writes PINs to the log.",
            hint="Configure the Infobip provider for production.",
            id="otp.E002",
        )]
    return list(cls.check_options(otp_settings.PROVIDER_OPTIONS))


@register(Tags.security)
def check_policy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    pin_length = otp_settings.PIN_LENGTH
    if not _is_int(pin_length) or not 6 <= pin_length <= 10:
        errors.append(Error("OTP['PIN_LENGTH'] must be an integer from 6 to 10.",
                            hint="NIST SP 800-63B asks for at least 6 digits.", id="otp.E003"))
    ttl = otp_settings.CODE_TTL_SECONDS
    if not _is_int(ttl) or not 1 <= ttl <= MAX_CODE_TTL_SECONDS:
        errors.append(Error(f"OTP['CODE_TTL_SECONDS'] must be an integer from 1 to {MAX_CODE_TTL_SECONDS}.",
                            hint="A PIN may live at most 10 minutes.", id="otp.E004"))
    attempts = otp_settings.MAX_VERIFY_ATTEMPTS
    if not _is_int(attempts) or not 1 <= attempts <= 10:
        errors.append(Error("OTP['MAX_VERIFY_ATTEMPTS'] must be an integer from 1 to 10.",
                            id="otp.E005"))
    region = otp_settings.DEFAULT_REGION
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        errors.append(Error(f"OTP['DEFAULT_REGION'] = {region!r} is not a supported region code.",
                            hint="Use an ISO 3166-1 alpha-2 code such as 'US', or None.",
                            id="otp.E006"))
    max_bytes = otp_settings.MAX_REQUEST_BYTES
    if not _is_int(max_bytes) or max_bytes < 128:
        errors.append(Error("OTP['MAX_REQUEST_BYTES'] must be an integer of at least 128.",
                            id="otp.E007"))
    retention = otp_settings.RETENTION_DAYS
    if not _is_int(retention) or retention < 0:
        errors.append(Error("OTP['RETENTION_DAYS'] must be a non-negative integer.", id="otp.E008"))
    return errors
