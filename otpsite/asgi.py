"""ASGI entry point. Runs the system checks at start so a bad production config fails fast."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otpsite.settings")

application = get_asgi_application()

from otpsite.startup import fail_on_check_errors  # noqa: E402

fail_on_check_errors()
