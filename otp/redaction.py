"""Keep personal data and secrets out of logs."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

# Infobip puts the pinId in the URL path; urllib3 logs request lines at DEBUG.
_PIN_PATH = re.compile(r"(/2fa/\d+/pin/)[^/\s?\"]+")


def mask_phone(phone: str, visible: int = 2) -> str:
    """``+14155552671`` -> ``+1********71``: country code hint and last digits only."""
    if not phone:
        return ""
    digits = phone.lstrip("+")
    head = digits[:1]
    tail = digits[-visible:] if len(digits) > visible + 1 else ""
    hidden = len(digits) - len(head) - len(tail)
    return f"+{head}{'*' * hidden}{tail}"


def redact_pin_path(text: str) -> str:
    """Replace the pinId segment of a 2FA URL with ``<pinId>``."""
    return _PIN_PATH.sub(r"\1<pinId>", text)


def redact_url_credentials(url: str) -> str:
    """``http://user:secret@proxy:3128`` -> ``http://***@proxy:3128``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


class PinPathRedactingFilter(logging.Filter):
    """Rewrites log records whose message would carry a 2FA pinId in a URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_pin_path(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_installed = False


def install_transport_log_filter() -> None:
    """Attach the pinId filter to urllib3's request-line logger, once per process."""
    global _installed
    if not _installed:
        logging.getLogger("urllib3.connectionpool").addFilter(PinPathRedactingFilter())
        _installed = True
