"""WSGI entry point. Runs the system checks at start so a bad production config fails fast."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otpsite.settings")

application = get_wsgi_application()

from otpsite.startup import fail_on_check_errors  # noqa: E402  (needs Django set up)

fail_on_check_errors()
