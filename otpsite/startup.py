"""Start-up guard shared by the WSGI and ASGI entry points."""

from __future__ import annotations

from django.core import checks
from django.core.management.base import SystemCheckError


def fail_on_check_errors() -> None:
    """Refuse to serve when a system check reports an error (``runserver`` does this itself)."""
    errors = [m for m in checks.run_checks() if m.is_serious() and not m.is_silenced()]
    if errors:
        raise SystemCheckError("System check failed:\n" + "\n".join(str(m) for m in errors))
