"""Origin-bound one-time codes: the SMS line ``@host #code`` browsers read.

When the last line of an SMS is ``@example.com #123456``, Safari offers the
code above the keyboard of an ``autocomplete="one-time-code"`` field, and
Chrome's WebOTP API hands it to the page, but only on a page whose host is
``example.com``: a look-alike site never gets it. Other readers see one more
line of text. With ``OTP["WEBOTP_DOMAIN"]`` set, provisioning writes that line
into the SMS template and the simulated providers into their messages.

The line carries the template's one ``{{pin}}``: whether Infobip accepts two
placeholders is not documented, so the human-readable text above it says the
code is below instead of repeating it.
"""

from __future__ import annotations

import re

from otp.providers.infobip_spec import PIN_PLACEHOLDER

#: The text of a message without an origin line: voice calls, and SMS while the setting is off.
DEFAULT_MESSAGE_TEXT = f"Your verification code is {PIN_PLACEHOLDER}"
#: The human-readable first line of an origin-bound SMS.
DEFAULT_HEADLINE = "Your verification code is below."

# A line that binds a code to a host: "@host #code", maybe "@embedded.host" after it.
_ORIGIN_LINE = re.compile(r"@\S+ #\S+( @\S+)?")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def host_problem(value: object) -> str | None:
    """Why ``value`` is not a bare host such as ``example.com``, or None."""
    if not isinstance(value, str):
        return "it is not a string"
    if "://" in value:
        return "it has a scheme"
    if any(char in value for char in "/?#"):
        return "it has a path"
    if ":" in value:
        return "it has a port"
    if not value.isascii():
        return "it is not ASCII (write an internationalized domain in its xn-- form)"
    if value != value.lower():
        return "it is not lower case"
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in value.split(".")):
        return "it is not a host name"
    return None


def origin_line(domain: str, code: str = PIN_PLACEHOLDER) -> str:
    """``@example.com #{{pin}}``, or with ``code`` the line as a user receives it."""
    return f"@{domain} #{code}"


def origin_bound(headline: str, domain: str) -> str:
    """``headline``, a blank line, and the origin line with the PIN placeholder."""
    return f"{headline.rstrip()}\n\n{origin_line(domain)}"


def last_line(text: str) -> str:
    """The line browsers read: the last one."""
    return text.rstrip("\r\n").rsplit("\n", 1)[-1].rstrip("\r")


def origin_lines(text: str) -> list[str]:
    """Every line of ``text`` that looks like an origin line, for any host."""
    return [line for line in text.splitlines() if _ORIGIN_LINE.fullmatch(line.strip())]


def render(text: str, pin: str) -> str:
    """``text`` with the PIN in place of ``{{pin}}``, as Infobip sends it."""
    return text.replace(PIN_PLACEHOLDER, pin)
