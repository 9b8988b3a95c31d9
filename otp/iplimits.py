"""Per-client-IP limits with django-ratelimit, in the shared cache.

The key is the client IP as the trusted proxies report it (see
:mod:`otp.client_ip`), never a body field: DRF's ``request.POST`` is empty for
JSON, so a ``post:`` key would put every client in one bucket.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest
from django_ratelimit.core import get_usage

from otp import events
from otp.client_ip import client_ip, ip_bucket
from otp.conf import otp_settings
from otp.exceptions import LimiterUnavailable, RateLimited
from otp.limits import coarse

SEND = "send"  # send and resend share one bucket: both deliver an SMS
VERIFY = "verify"


def _ip_key(group: str, request: HttpRequest) -> str:
    return ip_bucket(client_ip(request))


def check_ip_limit(request: HttpRequest, scope: str, phone: str | None = None) -> None:
    """Count this request against the IP's bucket for ``scope``; raise when over.

    A cache that cannot be reached fails closed (503): no SMS goes out on an
    unknown count.
    """
    rate = otp_settings.IP_SEND_RATE if scope == SEND else otp_settings.IP_VERIFY_RATE
    if rate is None:
        return
    try:
        usage = get_usage(request, group=f"otp.{scope}", key=_ip_key, rate=rate, increment=True)
    except Exception as err:  # any cache client error: we cannot know the count
        events.log_event(
            events.PROVIDER_ERROR, phone=phone, level=logging.ERROR, operation="ip_limit", error=type(err).__name__
        )
        raise LimiterUnavailable("the rate-limit cache is unavailable") from err
    if usage is None:
        return
    if usage["should_limit"]:
        # django-ratelimit reports a failed cache read as count 0 and time_left -1.
        if usage["time_left"] < 0:
            raise LimiterUnavailable("the rate-limit cache is unavailable")
        events.log_event(events.RATE_LIMITED, phone=phone, scope=f"ip_{scope}")
        raise RateLimited(f"ip {scope} rate", retry_after=coarse(usage["time_left"]))
