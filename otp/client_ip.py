"""The client's IP address, as far as the configured proxies can vouch for it."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from otp.conf import otp_settings

# IPv6 users usually hold a whole /64; bucketing per address would let one
# client rotate through billions of buckets.
IPV6_PREFIX = 64


def client_ip(request: HttpRequest) -> str:
    """``REMOTE_ADDR``, or with ``TRUSTED_PROXY_COUNT = N`` the address the
    outermost of N trusted proxies saw, taken from the right of
    ``X-Forwarded-For``. Entries a client adds itself sit further left and are
    never read, so a spoofed header cannot move a client to another bucket.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = otp_settings.TRUSTED_PROXY_COUNT or 0
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < count:
        return remote  # fewer hops than configured: the proxies are not set up as declared
    candidate = forwarded[-count]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return remote
    return candidate


def ip_bucket(address: str) -> str:
    """The limiter key for an address: itself for IPv4, its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)
