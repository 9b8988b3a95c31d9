"""The admin login's lockout (django-axes): whose failures count together, and the answer."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _

from otp.api.responses import error_body
from otp.exceptions import InvalidInput
from otp.limits.client_ip import IPV6_PREFIX, client_ip

# Where the client cannot be told (a malformed X-Forwarded-For, no address):
# every such request shares this one bucket, so an unreadable header neither
# escapes the limit nor lands on someone else's address. Axes stores it in an
# IP address column, so it has to be one.
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 (a value, not a bind address)

LOCKED_OUT = _("Too many failed logins. Please try again later.")


def lockout_address(request: HttpRequest) -> str:
    """The client's address as the app's limits see it, honouring ``OTP['TRUSTED_PROXY_COUNT']``.

    An IPv6 client counts as its /64, which it usually holds whole; counted
    per address, it could rotate through billions of them.
    """
    try:
        address = ipaddress.ip_address(client_ip(request))
    except (InvalidInput, ValueError):
        return UNKNOWN_ADDRESS
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False).network_address)
    return str(address)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> JsonResponse:
    """429 in the site's error shape; Retry-After is the cool-off, which each refused try restarts."""
    response = JsonResponse(error_body(LOCKED_OUT, "too_many_login_attempts"), status=429)
    # Imported here: axes.helpers loads axes' models, and this module is also
    # imported where axes is not an installed app.
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    if cool_off is not None:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
