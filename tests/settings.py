"""Minimal settings for the test suite, independent of otpsite.

``DATABASE_URL`` picks the database (SQLite in memory by default); the
concurrency tests need PostgreSQL.
"""

import environ

env = environ.Env()

SECRET_KEY = "tests-only-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("es", "Español")]
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The admin's stylesheets and scripts, served by the browser tests' live server.
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "otp",
]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "otp.api.openapi.strip_trailing_slashes",
    ],
}
MIDDLEWARE = [
    "otp.logs.RequestLogMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Messages follow Accept-Language; with none, they are English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"
DATABASES = {"default": env.db("DATABASE_URL", default="sqlite://:memory:")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # As the site binds on the server, but preparing every statement on its
    # first run: each query the tests make also runs as a prepared statement.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        options="-c lock_timeout=3000", server_side_binding=True, prepare_threshold=0
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

# The core tests send and verify freely; tests/test_limits.py turns each limit
# back on (``production_limits`` restores every default).
RELAXED_LIMITS = {
    "IP_SEND_RATE": None,
    "IP_VERIFY_RATE": None,
    "RESEND_COOLDOWN_SECONDS": 0,
    "MAX_SENDS_PER_PHONE_PER_DAY": None,
    "MAX_FAILURES_PER_PHONE": None,
    "MAX_SENDS_PER_PREFIX_PER_HOUR": None,
    "MAX_SENDS_PER_COUNTRY_PER_HOUR": None,
    "MAX_SENDS_PER_HOUR": None,
    "MAX_SENDS_PER_DAY": None,
    "VERIFY_FAILURE_MIN_SECONDS": 0,
    "VERIFY_FAILURE_MAX_SECONDS": 0,
}
OTP = {"PROVIDER": "otp.providers.locmem.LocmemProvider", **RELAXED_LIMITS}
