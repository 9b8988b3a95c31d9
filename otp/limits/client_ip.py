"""The client's IP address, as far as the configured proxies can vouch for it."""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from otp import events
from otp.conf import otp_settings
from otp.exceptions import InvalidForwardedFor

# IPv6 users usually hold a whole /64; bucketing per address would let one
# client rotate through billions of buckets.
IPV6_PREFIX = 64
# A misconfigured proxy breaks every request: one warning per interval per
# process says so without letting a flood of bad headers flood the log.
MISCONFIGURATION_LOG_SECONDS = 60
# Enough of a bad entry to recognise it in the log.
MAX_LOGGED_ENTRY = 64

# The forms proxies write besides a bare address: "[v6]", "[v6]:port", "v4:port".
_BRACKETED = re.compile(r"\[([^\[\]]+)\](?::(\d{1,5}))?")
_IPV4_WITH_PORT = re.compile(r"([0-9.]+):(\d{1,5})")
_MAX_PORT = 65535

_misconfiguration_log = events.OncePerInterval(MISCONFIGURATION_LOG_SECONDS)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(request: HttpRequest) -> str:
    """``REMOTE_ADDR``, or with ``TRUSTED_PROXY_COUNT = N`` the address the
    outermost of N trusted proxies saw: the N-th entry from the right of
    ``X-Forwarded-For``. Entries a client adds itself sit further left and are
    never read, so a spoofed header cannot move a client to another bucket.

    :raises InvalidForwardedFor: the header has fewer than N entries or its
        N-th does not parse; the proxies are not set up as declared, and
        answering from ``REMOTE_ADDR`` would put every client in the proxy's
        bucket.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = otp_settings.TRUSTED_PROXY_COUNT or 0
    if count <= 0:
        address = _bare_address(remote)
        return str(address) if address else remote
    entries = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [entry for entry in entries if entry]
    if len(entries) < count:
        raise _misconfigured(entries=len(entries), expected=count)
    entry = entries[-count]
    address = parse_forwarded_entry(entry)
    if address is None:
        raise _misconfigured(entries=len(entries), expected=count, entry=entry[:MAX_LOGGED_ENTRY])
    return str(address)


def parse_forwarded_entry(entry: str) -> IPAddress | None:
    """The address in an ``X-Forwarded-For`` entry (bare, ``v4:port``, ``[v6]``
    or ``[v6]:port``), an IPv4-mapped IPv6 address as its IPv4; ``None`` when
    it does not parse."""
    match = _BRACKETED.fullmatch(entry)
    if match and ":" not in match[1]:
        return None  # brackets hold IPv6 only
    match = match or _IPV4_WITH_PORT.fullmatch(entry)
    if match and match[2] is not None and int(match[2]) > _MAX_PORT:
        return None
    return _bare_address(match[1] if match else entry)


def ip_bucket(address: str) -> str:
    """The limiter key for an address: itself for IPv4 (and IPv4-mapped IPv6), its /64 for IPv6."""
    ip = _bare_address(address)
    if ip is None:
        return address or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def _bare_address(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d, and every
    # such address falls in the one ::/64.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _misconfigured(**fields: Any) -> InvalidForwardedFor:
    held_back = _misconfiguration_log.admit()
    if held_back is not None:
        events.log_event(events.FORWARDED_FOR_INVALID, level=logging.WARNING, suppressed=held_back, **fields)
    return InvalidForwardedFor(_("The X-Forwarded-For header is missing or malformed."))
