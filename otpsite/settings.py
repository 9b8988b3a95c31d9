"""Settings of the demo and production site, read from the environment.

Every variable is documented in ``.env.example`` and the README's settings
reference. An optional ``.env`` file beside ``manage.py`` is read first; real
environment variables win over it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = env.str("OTPSITE_ENV_FILE", default=str(BASE_DIR / ".env"))
if Path(_env_file).is_file():
    environ.Env.read_env(_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Development may run without a secret; production must set one.
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-key-do-not-use-in-production" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_ratelimit",
    "drf_spectacular",
    "axes",
    "otp",
]

MIDDLEWARE = [
    "otp.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Messages follow Accept-Language; with none, they are English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes documents: it turns a lockout into the lockout answer.
    "axes.middleware.AxesMiddleware",
]
# Axes first: it refuses a locked-out login before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "otpsite.urls"
WSGI_APPLICATION = "otpsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, but a pooled connection the server closed is replaced
    # at check-out instead of failing a request (otpsite/postgres/base.py).
    DATABASES["default"]["ENGINE"] = "otpsite.postgres"
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # A row lock held by a stuck transaction makes a competing request fail
    # fast (503) instead of waiting without bound.
    _options["options"] = f"-c lock_timeout={env.int('DATABASE_LOCK_TIMEOUT_MS', default=3000)}"
    # A database that stops answering without a reset (a partition, a host
    # gone) fails a request after about DATABASE_NETWORK_TIMEOUT seconds, not
    # after the kernel's retransmission limit (some 15 minutes) or, for a
    # query already sent, never: TCP_USER_TIMEOUT bounds data the server does
    # not acknowledge, keepalive probes find a silent server while a query
    # waits, and connect_timeout bounds the pool's new connections. A live
    # server acknowledges both, however long its query runs. libpq parameters
    # in DATABASE_URL's query string (?tcp_user_timeout=...) win; 0 leaves
    # libpq's and the kernel's defaults.
    _network_timeout = env.int("DATABASE_NETWORK_TIMEOUT", default=10)
    if _network_timeout > 0:
        for _name, _value in {
            "connect_timeout": max(2, _network_timeout),  # libpq's least
            "tcp_user_timeout": _network_timeout * 1000,
            "keepalives": 1,
            "keepalives_idle": max(1, _network_timeout // 2),
            "keepalives_interval": max(1, _network_timeout // 5),
        }.items():
            _options.setdefault(_name, _value)
    # Bind parameters on the server, and let psycopg prepare a statement once
    # a connection has run it a few times: the pool keeps connections for
    # hours, so the hot statements are parsed and planned once, not per call.
    # Off (DATABASE_PREPARE_THRESHOLD=off) behind a transaction-mode pooler
    # such as PgBouncer, which cannot keep prepared statements.
    _options["server_side_binding"] = env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    _prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip().lower()
    _options["prepare_threshold"] = None if _prepare_threshold in ("", "off") else int(_prepare_threshold)
    if env.bool("DATABASE_POOL", default=True):
        # psycopg's pool, per process: hundreds of threads share a few connections.
        _options["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=12),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Django's Redis backend, keeping one client per pool (see otp/cache.py).
    CACHES = {"default": {"BACKEND": "otp.cache.RedisCache", "LOCATION": REDIS_URL}}
# The per-IP limits count in this cache; a limiter that cannot count refuses.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = False
# django-ratelimit predates Django's own RedisCache (which otp.cache.RedisCache
# extends); its incr() is Redis INCRBY, atomic as the limiter needs.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
if DEBUG and not REDIS_URL:
    # Let the development site run on the local-memory cache; the app's own
    # check otp.W020 says the IP limits are per process, and `check --deploy`
    # still reports it as an error (otp.E021).
    SILENCED_SYSTEM_CHECKS += ["django_ratelimit.E003"]

# -- The admin login (django-axes) -------------------------------------------------
# Failures count per client address and per (address, username), never per
# username alone: anyone could lock a known admin out. The address is the one
# the app's limits use (otp.client_ip, honouring OTP_TRUSTED_PROXY_COUNT).
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["ip_address", "username"]]
AXES_CLIENT_IP_CALLABLE = "otpsite.admin_login.lockout_address"
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("ADMIN_LOGIN_COOLOFF_SECONDS", default=900))
AXES_LOCKOUT_CALLABLE = "otpsite.admin_login.lockout_response"
# The database handler: every worker counts into the same rows on any
# database (the default cache may be per process), lockouts survive a
# restart, and staff see and clear them in the admin. Admin logins are few.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# A success must not clear an address's failures: one valid account would
# otherwise reset the count between guesses at another's password.
AXES_RESET_ON_SUCCESS = False
# No startup line from every command and worker; failures and lockouts are
# still logged, with the username and address masked.
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# User-facing messages ship in these languages (otp/locale).
LANGUAGES = [("en", "English"), ("es", "Español")]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SMS one-time passwords",
    "DESCRIPTION": "Send and verify one-time PINs by SMS or voice, delivered by Infobip 2FA.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "otp.openapi.strip_trailing_slashes",
    ],
}

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)

# -- The otp app ---------------------------------------------------------------

INFOBIP_API_KEY = env.str("INFOBIP_API_KEY", default="")


def _default_provider() -> str | None:
    """Infobip when a key is set; the console provider in development; else none (check otp.E001)."""
    if INFOBIP_API_KEY:
        return "otp.providers.infobip.InfobipProvider"
    if DEBUG:
        return "otp.providers.development.DevelopmentProvider"
    return None


OTP_PROVIDER = env.str("OTP_PROVIDER", default="") or _default_provider()
OTP = {
    "PROVIDER": OTP_PROVIDER,
    "PROVIDER_OPTIONS": (
        {
            "api_key": INFOBIP_API_KEY,
            "base_url": env.str("INFOBIP_BASE_URL", default=""),
            "application_id": env.str("INFOBIP_2FA_APP_ID", default=""),
            "message_id": env.str("INFOBIP_2FA_MSG_ID", default=""),
            "connect_timeout": env.float("INFOBIP_CONNECT_TIMEOUT", default=3.0),
            "read_timeout": env.float("INFOBIP_READ_TIMEOUT", default=10.0),
        }
        if OTP_PROVIDER == "otp.providers.infobip.InfobipProvider"
        else {}
    ),
    "PIN_LENGTH": env.int("OTP_PIN_LENGTH", default=6),
    "CODE_TTL_SECONDS": env.int("OTP_CODE_TTL_SECONDS", default=300),
    "MAX_VERIFY_ATTEMPTS": env.int("OTP_MAX_VERIFY_ATTEMPTS", default=5),
    "DEFAULT_REGION": env.str("OTP_DEFAULT_REGION", default="") or None,
    "MAX_REQUEST_BYTES": env.int("OTP_MAX_REQUEST_BYTES", default=1024),
    "RETENTION_DAYS": env.int("OTP_RETENTION_DAYS", default=30),
}
# Limits: each OTP_<NAME> variable overrides the app default; "off" switches
# a limit off (see the settings reference).
_LIMIT_SETTINGS = {
    "IP_SEND_RATE": str,
    "IP_VERIFY_RATE": str,
    "TRUSTED_PROXY_COUNT": int,
    "RESEND_COOLDOWN_SECONDS": int,
    "RESEND_COOLDOWN_MAX_SECONDS": int,
    "MAX_SENDS_PER_PHONE_PER_DAY": int,
    "MAX_FAILURES_PER_PHONE": int,
    "FAILURE_BACKOFF_SECONDS": int,
    "FAILURE_BACKOFF_MAX_SECONDS": int,
    "PREFIX_STRIP_DIGITS": int,
    "MAX_SENDS_PER_PREFIX_PER_HOUR": int,
    "PREFIX_BLOCK_SECONDS": int,
    "MAX_SENDS_PER_COUNTRY_PER_HOUR": int,
    "COUNTRY_BLOCK_SECONDS": int,
    "MAX_SENDS_PER_HOUR": int,
    "MAX_SENDS_PER_DAY": int,
    "CIRCUIT_FAILURES": int,
    "CIRCUIT_OPEN_SECONDS": int,
    "PROVIDER_MAX_CONCURRENCY": int,
    "PROVIDER_QUEUE_TIMEOUT_SECONDS": float,
    "PROVIDER_THROTTLE_ALERT_NUMBERS": int,
}
for _name, _cast in _LIMIT_SETTINGS.items():
    _raw = env.str(f"OTP_{_name}", default="")
    if _raw:
        OTP[_name] = None if _raw.lower() == "off" else _cast(_raw)
if env.str("OTP_ALLOWED_REGIONS", default=""):
    OTP["ALLOWED_REGIONS"] = [r.strip().upper() for r in env.list("OTP_ALLOWED_REGIONS")]
if env.str("OTP_ALLOWED_NUMBER_TYPES", default=""):
    OTP["ALLOWED_NUMBER_TYPES"] = [t.strip().upper() for t in env.list("OTP_ALLOWED_NUMBER_TYPES")]

# JSON lines in production (one object per record), plain text in development.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "otp.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The access record replaces Django's own 4xx/5xx warnings.
    "loggers": {"django.request": {"level": "ERROR"}},
}
