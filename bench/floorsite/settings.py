"""The site's own settings and middleware; only the URLs change."""

from otpsite.settings import *  # noqa: F403

ROOT_URLCONF = "floorsite.urls"
