"""Old import paths of names that moved, kept for one release with a ``DeprecationWarning``."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved_to(old: str, new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for module ``old``, whose names now live in module ``new``."""

    def __getattr__(name: str) -> Any:
        try:
            value = getattr(importlib.import_module(new), name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}; the old path will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__
