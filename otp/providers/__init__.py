"""Provider loading: one instance per configured class and options."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from otp.conf import otp_settings
from otp.exceptions import OtpConfigurationError
from otp.providers.base import BaseProvider, SendResult, VerifyResult

__all__ = ["BaseProvider", "SendResult", "VerifyResult", "get_provider", "load_provider_class"]

_cache: dict[tuple[str, str], BaseProvider] = {}
_lock = threading.Lock()


def load_provider_class(path: str | None) -> type[BaseProvider]:
    """Import the provider class named by ``path``, with an error naming the setting."""
    if not path:
        raise OtpConfigurationError("OTP['PROVIDER'] is not set.")
    try:
        cls = import_string(path)
    except ImportError as err:
        raise OtpConfigurationError(f"OTP['PROVIDER'] = {path!r} cannot be imported: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, BaseProvider)):
        raise OtpConfigurationError(f"OTP['PROVIDER'] = {path!r} is not a BaseProvider subclass.")
    return cls


def get_provider() -> BaseProvider:
    """Return the configured provider, built once per (class, options).

    Reusing the instance reuses its HTTP connections; keying the cache on the
    options keeps ``override_settings`` working in tests.
    """
    path = otp_settings.PROVIDER
    options: dict[str, Any] = otp_settings.PROVIDER_OPTIONS
    key = (str(path), repr(sorted(options.items())))
    provider = _cache.get(key)
    if provider is None:
        with _lock:
            provider = _cache.get(key)
            if provider is None:
                cls = load_provider_class(path)
                if cls.is_development_only and not settings.DEBUG:
                    # Belt and braces behind check otp.E002: never fake SMS in production.
                    raise OtpConfigurationError(f"{cls.__name__} delivers nothing and is refused while DEBUG is off.")
                provider = cls(**options)
                _cache[key] = provider
    return provider
