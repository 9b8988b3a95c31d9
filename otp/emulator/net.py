"""Loopback checks: the emulator binds to, and its control API answers, loopback only."""

from __future__ import annotations

from otp.net import is_loopback

__all__ = ["NotLoopback", "check_loopback", "is_loopback"]


class NotLoopback(ValueError):
    """The emulator was asked to listen on a non-loopback address."""


def check_loopback(host: str) -> str:
    """``host`` if :func:`is_loopback`; raises :class:`NotLoopback` otherwise."""
    if not is_loopback(host):
        raise NotLoopback(f"{host!r} is not a loopback address; the emulator listens on loopback only")
    return host


def host_of(host_header: str) -> str:
    """The host of a ``Host`` header: ``[::1]:8080`` -> ``::1``, ``a:80`` -> ``a``."""
    host = host_header.strip()
    return host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
