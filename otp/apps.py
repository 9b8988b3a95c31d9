"""Django app configuration for ``otp``."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OtpConfig(AppConfig):
    name = "otp"
    verbose_name = _("One-time passwords")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registering checks here (not at import) keeps them tied to the app
        # being installed.
        from otp import checks  # noqa: F401
