"""Infobip's text formats: durations (``15m``), limits (``3/1d``) and compact JSON.

Grammar (reference §3.1): an optional positive length, then one of the units
``ms s m h d``; a limit puts ``{attempts}/`` in front. Anything else (zero,
signs, spaces, upper case, fractions) is rejected rather than guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# "ms" before "m", so "5ms" is five milliseconds and not a syntax error.
_DURATION = re.compile(r"(\d+)?(ms|s|m|h|d)")
_LIMIT = re.compile(r"(\d+)/((?:\d+)?(?:ms|s|m|h|d))")

ONE_DAY = 86400.0
ONE_YEAR = 365 * ONE_DAY


@dataclass(frozen=True)
class Duration:
    """A parsed duration; ``str()`` gives back the text it was read from."""

    text: str
    seconds: float

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Limit:
    """``attempts`` requests per ``window`` (a sliding window)."""

    text: str
    attempts: int
    window: Duration

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object, *, maximum: float = ONE_YEAR) -> Duration:
    """``"15m"`` -> ``Duration("15m", 900.0)``; raises ``ValueError`` when invalid."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("must look like 15m: an optional number and one of ms, s, m, h, d")
    length = int(match[1]) if match[1] is not None else 1
    if length <= 0:
        raise ValueError("must be longer than zero")
    seconds = length * _UNIT_SECONDS[match[2]]
    if seconds > maximum:
        raise ValueError(f"must not exceed {_describe(maximum)}")
    return Duration(match[0], seconds)


def parse_limit(text: object, *, maximum: float = ONE_YEAR) -> Limit:
    """``"3/1d"`` -> three per day; raises ``ValueError`` when invalid."""
    match = _LIMIT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("must look like 3/1d: attempts, a slash, then a duration")
    attempts = int(match[1])
    if attempts <= 0:
        raise ValueError("attempts must be at least 1")
    return Limit(match[0], attempts, parse_duration(match[2], maximum=maximum))


def _describe(seconds: float) -> str:
    return "one day" if seconds == ONE_DAY else "one year" if seconds == ONE_YEAR else f"{seconds:g}s"


def compact_json(data: Any) -> bytes:
    """JSON without spaces, as Infobip writes it."""
    return json.dumps(data, separators=(",", ":")).encode()
