"""Per-client-IP limits with django-ratelimit, in the shared cache.

The key is the client IP as the trusted proxies report it (see
:mod:`otp.client_ip`), never a body field: DRF's ``request.POST`` is empty for
JSON, so a ``post:`` key would put every client in one bucket.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, _split_rate, get_usage

from otp import events
from otp.cache import RedisCache
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
    # Outside the cache's error handling: a refused X-Forwarded-For is a 400, not a 503.
    group = f"otp.{scope}"
    bucket = _ip_key(group, request)
    try:
        usage = _count(request, group, rate, bucket)
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


def _count(request: HttpRequest, group: str, rate: str, bucket: str) -> dict[str, Any] | None:
    """django-ratelimit's ``get_usage(..., increment=True)``, in one cache round trip on Redis.

    ``get_usage`` adds the window's key, then increments it when it existed:
    two round trips for every request after an IP's first in a window. On
    :class:`otp.cache.RedisCache` the same key (django-ratelimit's window and
    key scheme) is counted by one atomic command, so the count is shared with
    anything else that counts that group through django-ratelimit.
    """
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if not isinstance(cache, RedisCache) or not getattr(settings, "RATELIMIT_ENABLE", True):
        return get_usage(request, group=group, key=lambda _group, _request: bucket, rate=rate, increment=True)
    limit, period = _split_rate(rate)
    window = _get_window(bucket, period)
    count = cache.count(_make_cache_key(group, window, rate, bucket, ALL), period + EXPIRATION_FUDGE)
    return {"count": count, "limit": limit, "should_limit": count > limit, "time_left": window - int(time.time())}
