"""Template context of the site's own pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from otp.conf import otp_settings

DEVELOPMENT_PROVIDER = "otp.providers.development.DevelopmentProvider"


def site(request: HttpRequest) -> dict[str, Any]:
    """``sms_in_terminal``: codes are logged by the development provider (scripts/dev), not sent."""
    return {"sms_in_terminal": settings.DEBUG and otp_settings.PROVIDER == DEVELOPMENT_PROVIDER}
