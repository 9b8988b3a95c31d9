"""Network helpers shared by the Infobip provider, the emulator and the site's database backend."""

from __future__ import annotations

import ipaddress
import select


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (no name resolution)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def has_input(fileno: int) -> bool:
    """True when the socket ``fileno`` can be read at once: data, end of stream or an error.

    ``poll``, not ``select``: a busy worker's descriptors go past 1023, which
    ``select`` refuses.
    """
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))
