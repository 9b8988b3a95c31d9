"""Per-client-IP limits, in the shared cache.

The bucket is the client IP as the trusted proxies report it (see
:mod:`otp.limits.client_ip`), never a body field: DRF's ``request.POST`` is empty for
JSON, so a ``post:`` key would put every client in one bucket.

Any cache counts through django-ratelimit's public ``get_usage`` (its own keys
and windows; an ``add``, then an ``incr``), except
:class:`otp.cache.RedisCache`, which counts in one round trip
(:meth:`~otp.cache.RedisCache.count`) under the app's own key::

    otp:ip:<group>:<limit>/<period>s:<window start>:<bucket>

for example ``otp:ip:otp.send:5/900s:1765152000:203.0.113.9``. ``group`` is
``otp.send`` (sends and resends) or ``otp.verify``; the rate is normalised,
so a new rate starts new counts. Windows are fixed and aligned on the epoch:
one starts at every multiple of the period, in Unix seconds. A window's
counter is created by its first request and lives one period from then,
which outlasts the window.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from otp import events
from otp.cache import RedisCache
from otp.conf import otp_settings
from otp.exceptions import LimiterUnavailable, RateLimited
from otp.limits.client_ip import client_ip, ip_bucket
from otp.limits.clock import coarse

SEND = "send"  # send and resend share one bucket: both deliver an SMS
VERIFY = "verify"


def check_ip_limit(request: HttpRequest, scope: str, phone: str | None = None) -> None:
    """Count this request against the IP's bucket for ``scope``; raise when over.

    A cache that cannot be reached fails closed (503): no SMS goes out on an
    unknown count.
    """
    rate = otp_settings.IP_SEND_RATE if scope == SEND else otp_settings.IP_VERIFY_RATE
    if rate is None:
        return
    # Outside the cache's error handling: a refused X-Forwarded-For is a 400, not a 503.
    bucket = ip_bucket(client_ip(request))
    try:
        usage = _usage(request, f"otp.{scope}", rate, bucket)
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


_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}


def parse_rate(rate: str) -> tuple[int, int]:
    """The requests and the seconds of a django-ratelimit rate: ``"5/15m"`` is ``(5, 900)``."""
    limit, _, period = rate.partition("/")
    return int(limit), int(period[:-1] or 1) * _PERIOD_SECONDS[period[-1]]


def _usage(request: HttpRequest, group: str, rate: str, bucket: str) -> dict[str, Any] | None:
    """Count the request in ``bucket``; the usage as django-ratelimit's ``get_usage`` reports it."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if not isinstance(cache, RedisCache):
        return get_usage(request, group=group, key=lambda _group, _request: bucket, rate=rate, increment=True)
    limit, period = parse_rate(rate)
    now = int(time.time())
    window_start = now - now % period
    count = cache.count(f"otp:ip:{group}:{limit}/{period}s:{window_start}:{bucket}", period)
    return {"count": count, "limit": limit, "should_limit": count > limit, "time_left": window_start + period - now}
