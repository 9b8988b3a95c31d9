"""Settings of the demo and production site, read from the environment.

Every variable is documented in ``.env.example`` and the configuration
reference (docs/configuration.md). An optional ``.env`` file beside
``manage.py`` is read first; real environment variables win over it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_Value = TypeVar("_Value")


def setting(name: str, default: _Value, parse: Callable[[str], Any] = env.str) -> _Value:
    """The variable read with ``parse`` (an ``env`` method), or ``default`` when unset or empty.

    A copied .env.example leaves some variables empty; empty means "the default",
    never an empty string, False or a parse error.
    """
    if not os.environ.get(name, "").strip():
        return default
    return parse(name)


_env_file = setting("OTPSITE_ENV_FILE", str(BASE_DIR / ".env"))
if Path(_env_file).is_file():
    environ.Env.read_env(_env_file, overwrite=False)

DEBUG = setting("DEBUG", False, env.bool)
# Development may run without a secret; production must set one.
SECRET_KEY = setting("SECRET_KEY", "dev-insecure-key-do-not-use-in-production" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS: list[str] = setting("ALLOWED_HOSTS", [], env.list)

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
    "drf_spectacular_sidecar",  # Swagger UI's files, served by the site itself
    "otp",
]

MIDDLEWARE = [
    "otp.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A strict Content-Security-Policy on the phone verification pages.
    "otpsite.csp.PagesPolicyMiddleware",
    # gunicorn serves no files: the admin's and the API docs' static files come
    # from here, after the https redirect and before the rest of the site.
    "whitenoise.middleware.WhiteNoiseMiddleware",
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
        # The site's own templates: its error pages (otpsite/errors.py) and the base of the
        # verification pages (OTP["WEB_BASE_TEMPLATE"]).
        "DIRS": [BASE_DIR / "otpsite" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "otpsite.context.site",
            ],
        },
    },
]

DATABASES = {"default": env.db_url_config(setting("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, but a pooled connection the server closed is replaced
    # at check-out instead of failing a request (otpsite/postgres/base.py).
    DATABASES["default"]["ENGINE"] = "otpsite.postgres"
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # A row lock held by a stuck transaction makes a competing request fail
    # fast (503) instead of waiting without bound.
    _options["options"] = f"-c lock_timeout={setting('DATABASE_LOCK_TIMEOUT_MS', 3000, env.int)}"
    # A database that stops answering without a reset (a partition, a host
    # gone) fails a request after about DATABASE_NETWORK_TIMEOUT seconds, not
    # after the kernel's retransmission limit (some 15 minutes) or, for a
    # query already sent, never: TCP_USER_TIMEOUT bounds data the server does
    # not acknowledge, keepalive probes find a silent server while a query
    # waits, and connect_timeout bounds the pool's new connections. A live
    # server acknowledges both, however long its query runs. libpq parameters
    # in DATABASE_URL's query string (?tcp_user_timeout=...) win; 0 leaves
    # libpq's and the kernel's defaults.
    _network_timeout = setting("DATABASE_NETWORK_TIMEOUT", 10, env.int)
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
    _options["server_side_binding"] = setting("DATABASE_SERVER_SIDE_BINDING", True, env.bool)
    _prepare_threshold = setting("DATABASE_PREPARE_THRESHOLD", "5").strip().lower()
    _options["prepare_threshold"] = None if _prepare_threshold in ("", "off") else int(_prepare_threshold)
    if setting("DATABASE_POOL", True, env.bool):
        # psycopg's pool, per process: hundreds of threads share a few connections.
        _options["pool"] = {
            "min_size": setting("DATABASE_POOL_MIN_SIZE", 2, env.int),
            "max_size": setting("DATABASE_POOL_MAX_SIZE", 12, env.int),
            "timeout": setting("DATABASE_POOL_TIMEOUT", 5.0, env.float),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0

REDIS_URL = setting("REDIS_URL", "")
if REDIS_URL:
    # Django's Redis backend, with one connection pool per process and one-round-trip counts (see otp/cache.py).
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
# the app's limits use (otp.limits.client_ip, honouring OTP_TRUSTED_PROXY_COUNT).
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["ip_address", "username"]]
AXES_CLIENT_IP_CALLABLE = "otpsite.admin_login.lockout_address"
AXES_FAILURE_LIMIT = setting("ADMIN_LOGIN_FAILURE_LIMIT", 5, env.int)
AXES_COOLOFF_TIME = timedelta(seconds=setting("ADMIN_LOGIN_COOLOFF_SECONDS", 900, env.int))
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
# The site's own texts (the home page's header and footer); the app's are in otp/locale.
LOCALE_PATHS = [BASE_DIR / "otpsite" / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise finds the apps' static files where they are installed, as
# runserver does: no collectstatic step before a start.
WHITENOISE_USE_FINDERS = True
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
    # The pinned files of drf-spectacular-sidecar, not a CDN's latest.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "otp.api.openapi.strip_trailing_slashes",
    ],
}

# -- HTTPS ---------------------------------------------------------------------

# Behind a TLS proxy, the header it sets to say the client's request was https
# ("HTTP_X_FORWARDED_PROTO,https"); only when the proxy always sets or strips
# it, or a client could claim https itself.
_proxy_ssl_header: tuple[str, ...] = setting("SECURE_PROXY_SSL_HEADER", (), env.tuple)
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be a header and a value, e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = setting("SECURE_SSL_REDIRECT", True, env.bool)
    SECURE_HSTS_SECONDS = setting("SECURE_HSTS_SECONDS", 365 * 24 * 3600, env.int)
    # Orchestrators probe an instance over plain http on its own address.
    SECURE_REDIRECT_EXEMPT = [r"^healthz(/live|/ready)?$"]
# HSTS for subdomains and the browsers' preload list bind every host under the
# domain, which only the domain's owner can decide (security.W005, W021).
SILENCED_SYSTEM_CHECKS += ["security.W005", "security.W021"]

# -- The otp app ---------------------------------------------------------------

INFOBIP_API_KEY = setting("INFOBIP_API_KEY", "")


def _default_provider() -> str | None:
    """Infobip when a key is set; the console provider in development; else none (check otp.E001)."""
    if INFOBIP_API_KEY:
        return "otp.providers.infobip.InfobipProvider"
    if DEBUG:
        return "otp.providers.development.DevelopmentProvider"
    return None


OTP_PROVIDER = setting("OTP_PROVIDER", "") or _default_provider()
OTP: dict[str, Any] = {
    "PROVIDER": OTP_PROVIDER,
    "PROVIDER_OPTIONS": (
        {
            "api_key": INFOBIP_API_KEY,
            "base_url": setting("INFOBIP_BASE_URL", ""),
            "application_id": setting("INFOBIP_2FA_APP_ID", ""),
            "message_id": setting("INFOBIP_2FA_MSG_ID", ""),
            "voice_message_id": setting("INFOBIP_2FA_VOICE_MSG_ID", ""),
            "connect_timeout": setting("INFOBIP_CONNECT_TIMEOUT", 3.0, env.float),
            "read_timeout": setting("INFOBIP_READ_TIMEOUT", 10.0, env.float),
        }
        if OTP_PROVIDER == "otp.providers.infobip.InfobipProvider"
        else {}
    ),
    "PIN_LENGTH": setting("OTP_PIN_LENGTH", 6, env.int),
    "CODE_TTL_SECONDS": setting("OTP_CODE_TTL_SECONDS", 300, env.int),
    "MAX_VERIFY_ATTEMPTS": setting("OTP_MAX_VERIFY_ATTEMPTS", 5, env.int),
    "DEFAULT_REGION": setting("OTP_DEFAULT_REGION", "") or None,
    "MAX_REQUEST_BYTES": setting("OTP_MAX_REQUEST_BYTES", 1024, env.int),
    "RETENTION_DAYS": setting("OTP_RETENTION_DAYS", 30, env.int),
    "WEBOTP_DOMAIN": setting("OTP_WEBOTP_DOMAIN", "") or None,
    # The home page is the app's verification flow, in the site's frame.
    "WEB_BASE_TEMPLATE": "otpsite/base.html",
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
    _raw = setting(f"OTP_{_name}", "")
    if _raw:
        OTP[_name] = None if _raw.lower() == "off" else _cast(_raw)
_regions: list[str] = setting("OTP_ALLOWED_REGIONS", [], env.list)
if _regions:
    OTP["ALLOWED_REGIONS"] = [r.strip().upper() for r in _regions]
_types: list[str] = setting("OTP_ALLOWED_NUMBER_TYPES", [], env.list)
if _types:
    OTP["ALLOWED_NUMBER_TYPES"] = [t.strip().upper() for t in _types]

# JSON lines in production (one object per record), plain text in development.
LOG_FORMAT = setting("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "otp.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": setting("LOG_LEVEL", "INFO")},
    # The access record replaces Django's own 4xx/5xx warnings.
    "loggers": {"django.request": {"level": "ERROR"}},
}
