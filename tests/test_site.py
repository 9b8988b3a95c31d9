"""The otpsite project: configuration from the environment, and a real server run."""

from __future__ import annotations

import json
import os
import re
import runpy
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test import RequestFactory, override_settings

from otp.exceptions import InvalidInput

ROOT = Path(__file__).resolve().parent.parent


def site_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFOBIP_", "OTP_", "DJANGO_", "SECURE_"))}
    env.pop("DEBUG", None)
    env.pop("SECRET_KEY", None)
    env.update(
        {
            "OTPSITE_ENV_FILE": str(tmp_path / "none.env"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}",
            # The servers these tests start speak plain http.
            "SECURE_SSL_REDIRECT": "0",
        }
    )
    env.update(values)
    return env


def manage(tmp_path: Path, *args: str, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=site_env(tmp_path, **values),
        capture_output=True,
        text=True,
        timeout=60,
    )


def python(tmp_path: Path, code: str, **values: str) -> subprocess.CompletedProcess[str]:
    env = site_env(tmp_path, **values)
    env["DJANGO_SETTINGS_MODULE"] = "otpsite.settings"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_production_needs_a_secret_key(tmp_path):
    result = manage(tmp_path, "check")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


@pytest.mark.slow
def test_production_without_provider_fails_checks(tmp_path):
    result = manage(tmp_path, "check", SECRET_KEY="s" * 50)
    assert result.returncode != 0 and "otp.E001" in result.stderr


@pytest.mark.slow
def test_production_wsgi_refuses_to_start_with_check_errors(tmp_path):
    result = python(tmp_path, "import otpsite.wsgi", SECRET_KEY="s" * 50)
    assert result.returncode != 0 and "otp.E001" in result.stderr


@pytest.mark.slow
def test_development_defaults_to_console_provider(tmp_path):
    code = "import django; django.setup(); from otp.conf import otp_settings as s; print(s.PROVIDER)"
    result = python(tmp_path, code, DEBUG="1")
    assert result.stdout.strip() == "otp.providers.development.DevelopmentProvider"


@pytest.mark.slow
def test_infobip_is_configured_from_the_environment(tmp_path):
    code = (
        "import django; django.setup(); from otp.providers import get_provider as g; "
        "p = g(); print(type(p).__name__, p.base_url, p.application_id, p.message_id, p.timeout)"
    )
    result = python(
        tmp_path,
        code,
        SECRET_KEY="s" * 50,
        INFOBIP_API_KEY="k",
        INFOBIP_BASE_URL="xyz.api.infobip.com",
        INFOBIP_2FA_APP_ID="A1",
        INFOBIP_2FA_MSG_ID="M1",
        INFOBIP_READ_TIMEOUT="4",
    )
    assert result.stdout.split() == ["InfobipProvider", "https://xyz.api.infobip.com", "A1", "M1", "(3.0,", "4.0)"]


@pytest.mark.slow
def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / "site.env"
    env_file.write_text("DEBUG=1\nOTP_CODE_TTL_SECONDS=120\nOTP_PIN_LENGTH=8\n")
    code = (
        "import django; django.setup(); from otp.conf import otp_settings as s; print(s.CODE_TTL_SECONDS, s.PIN_LENGTH)"
    )
    result = python(tmp_path, code, OTPSITE_ENV_FILE=str(env_file), OTP_PIN_LENGTH="7")
    assert result.stdout.split() == ["120", "7"]


PREPARED_COUNT = (
    "import django; django.setup(); from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    for n in range(6): cursor.execute('SELECT %s::int + 1', [n])\n"
    "    cursor.execute('SELECT count(*) FROM pg_prepared_statements'); print(cursor.fetchone()[0])"
)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("values", "prepared"),
    [
        ({}, 1),
        ({"DATABASE_PREPARE_THRESHOLD": "off"}, 0),
        ({"DATABASE_SERVER_SIDE_BINDING": "0"}, 0),
    ],
)
def test_the_site_prepares_a_statement_it_repeats(tmp_path, transactional_db, require_postgres, values, prepared):
    database = connection.settings_dict  # the test database
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"
    result = python(tmp_path, PREPARED_COUNT, DEBUG="1", DATABASE_URL=url, **values)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(prepared)


NETWORK_PARAMETERS = (
    "import django; django.setup(); from django.db import connection\n"
    "connection.ensure_connection(); p = connection.connection.info.get_parameters()\n"
    "print(*(p.get(k, '-') for k in "
    "('connect_timeout', 'tcp_user_timeout', 'keepalives', 'keepalives_idle', 'keepalives_interval')))"
)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("values", "query", "expected"),
    [
        ({}, "", "10 10000 1 5 2"),
        ({"DATABASE_NETWORK_TIMEOUT": "3"}, "", "3 3000 1 1 1"),
        ({}, "?tcp_user_timeout=2500&keepalives_idle=4", "10 2500 1 4 2"),  # the URL's own win
        ({"DATABASE_NETWORK_TIMEOUT": "0"}, "", "- - - - -"),  # libpq's and the kernel's defaults
    ],
)
def test_a_silent_database_is_given_up_on_after_the_network_timeout(
    tmp_path, transactional_db, require_postgres, values, query, expected
):
    # What the connection was opened with; tests/e2e/test_silent_network.py drops the packets.
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}{query}"
    result = python(tmp_path, NETWORK_PARAMETERS, DEBUG="1", DATABASE_URL=url, **values)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


# One pooled connection: its backend is terminated while it waits in the pool
# (as a database restart does), then the next request takes a connection.
STALE_POOLED_CONNECTION = """
import os, time, django, psycopg
django.setup()
from django.db import connection

def backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

old = backend_pid()
connection.close()  # back to the pool
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
    admin.execute("SELECT pg_terminate_backend(%s)", [old])
    while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [old]).fetchone():
        time.sleep(0.02)
time.sleep(0.1)  # the server's goodbye reaches the pooled socket
print(connection.settings_dict["ENGINE"], old != backend_pid())
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_a_pooled_connection_the_server_closed_is_replaced_not_failed(tmp_path, transactional_db, require_postgres):
    database = connection.settings_dict  # the test database
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"
    result = python(
        tmp_path,
        STALE_POOLED_CONNECTION,
        DEBUG="1",
        DATABASE_URL=url,
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_MAX_SIZE="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["otpsite.postgres", "True"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(base: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/send-otp", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{base} did not start")


@contextmanager
def site_server(tmp_path: Path, **values: str) -> Iterator[tuple[str, Path]]:
    """The site as the README runs it: DEBUG on, SQLite, the development provider."""
    assert manage(tmp_path, "migrate", "-v0", DEBUG="1", **values).returncode == 0
    port = free_port()
    log = (tmp_path / "server.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=site_env(tmp_path, DEBUG="1", **values),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base)
        yield base, tmp_path / "server.log"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def dev_server(tmp_path):
    with site_server(tmp_path) as served:
        yield served


@pytest.mark.slow
def test_development_site_end_to_end(dev_server, tmp_path):
    base, log_path = dev_server
    sent = requests.post(base + "/send-otp", json={"phoneNumber": "+1 415 555 2671"}, timeout=5)
    assert sent.status_code == 200 and sent.json() == {"message": "OTP sent successfully."}
    pins = re.findall(r"Your verification code is (\d{6})", log_path.read_text())
    assert len(pins) == 1
    wrong = "000000" if pins[0] != "000000" else "111111"
    bad = requests.post(base + "/verify-otp", json={"phoneNumber": "+14155552671", "pin": wrong}, timeout=5)
    assert bad.status_code == 401 and bad.json()["error"] == "Invalid or expired OTP."
    good = requests.post(base + "/verify-otp", json={"phoneNumber": "+14155552671", "pin": pins[0]}, timeout=5)
    assert good.status_code == 200 and good.json()["message"] == "OTP verified successfully."
    assert good.json()["verificationToken"]
    code = (
        "import django; django.setup(); from otp.models import OtpAttempt as A; "
        "a = A.objects.get(); print(a.phone, a.status, a.verified_at is not None, a.verify_slots_used)"
    )
    result = python(tmp_path, code, DEBUG="1")
    assert result.stdout.split() == ["+14155552671", "verified", "True", "1"]


@pytest.mark.slow
def test_development_site_serves_the_api_docs_assets(dev_server):
    base, _ = dev_server
    html = requests.get(base + "/api/docs/", timeout=5).text
    urls = re.findall(r"(?:src|href)=\"(/[^\"]+)\"", html)
    assert len(urls) >= 4
    for url in urls:
        assert requests.get(base + url.replace("&amp;", "&"), timeout=5).status_code == 200, url


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match[1]


@pytest.mark.slow
def test_development_site_home_page_is_the_verification_flow(dev_server):
    base, log_path = dev_server
    browser = requests.Session()
    home = browser.get(base + "/", timeout=5)
    assert home.status_code == 200
    html = home.text
    assert "sends a one-time code to the phone number you enter" in html
    assert 'id="otpsite-dev-hint"' in html and "<code>scripts/dev</code>" in html
    assert 'href="/api/docs/"' in html and 'href="/admin/"' in html
    # Its policy allows the site's own script and stylesheet, which the site serves.
    policy = home.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert '<link rel="stylesheet" href="/static/otp/web/otp.css">' in html
    for asset in ("/static/otp/web/otp.css", "/static/otp/web/webotp.js"):
        assert browser.get(base + asset, timeout=5).status_code == 200, asset

    token = csrf_token(html)
    sent = browser.post(base + "/", data={"phone_number": "+1 415 555 2671", "csrfmiddlewaretoken": token}, timeout=5)
    assert sent.status_code == 200 and sent.url == base + "/verify/"
    assert '<script src="/static/otp/web/webotp.js" defer></script>' in sent.text
    assert sent.headers["Content-Security-Policy"] == policy
    (pin,) = re.findall(r"Your verification code is (\d{6})", log_path.read_text())
    token = csrf_token(sent.text)
    done = browser.post(base + "/verify/", data={"code": pin, "csrfmiddlewaretoken": token}, timeout=5)
    assert done.url == base + "/verified/" and "+1 415-555-2671 is verified." in done.text


@pytest.mark.slow
def test_development_site_home_page_in_spanish(dev_server):
    base, _ = dev_server
    html = requests.get(base + "/", headers={"Accept-Language": "es"}, timeout=5).text
    assert '<html lang="es"' in html
    assert "Este sitio envía un código de un solo uso" in html and "Número de teléfono" in html


def test_the_pages_policy_goes_on_the_verification_pages_only():
    from django.http import HttpResponse
    from django.urls import resolve

    from otpsite.csp import PAGES_POLICY, PagesPolicyMiddleware

    def answer(path: str, response: HttpResponse) -> HttpResponse:
        request = RequestFactory().get(path)
        request.resolver_match = resolve(path)
        return PagesPolicyMiddleware(lambda _: response)(request)

    assert answer("/phone/", HttpResponse())["Content-Security-Policy"] == PAGES_POLICY
    assert "Content-Security-Policy" not in answer("/healthz", HttpResponse())
    own = HttpResponse(headers={"Content-Security-Policy": "default-src 'self'"})
    assert answer("/phone/verify/", own)["Content-Security-Policy"] == "default-src 'self'"


def test_gunicorn_runs_one_worker_more_than_cores_by_default(monkeypatch):
    for name in [n for n in os.environ if n.startswith("GUNICORN_")]:
        monkeypatch.delenv(name)
    config = runpy.run_path(str(ROOT / "otpsite" / "gunicorn.conf.py"))
    cores = os.cpu_count()
    assert cores is not None
    assert (config["workers"], config["worker_class"], config["threads"]) == (cores + 1, "gthread", 64)
    monkeypatch.setenv("GUNICORN_WORKERS", "5")
    assert runpy.run_path(str(ROOT / "otpsite" / "gunicorn.conf.py"))["workers"] == 5


ADMIN_PASSWORD = "correct-horse-battery-staple"
ATTACKER, COLLEAGUE = "203.0.113.7", "198.51.100.9"


def admin_login(base: str, password: str, *, forwarded_for: str, username: str = "admin") -> requests.Response:
    """One login to the admin, as a browser sends it, through a proxy that appended ``forwarded_for``."""
    with requests.Session() as browser:
        browser.headers["X-Forwarded-For"] = forwarded_for
        form = browser.get(base + "/admin/login/", timeout=5)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text
        fields = {"csrfmiddlewaretoken": token[1], "username": username, "password": password, "next": "/admin/"}
        return browser.post(base + "/admin/login/?next=/admin/", data=fields, allow_redirects=False, timeout=5)


@pytest.mark.slow
def test_admin_login_locks_out_an_ip_never_a_username(tmp_path):
    limits = {"OTP_TRUSTED_PROXY_COUNT": "1", "ADMIN_LOGIN_FAILURE_LIMIT": "3", "ADMIN_LOGIN_COOLOFF_SECONDS": "3600"}
    with site_server(tmp_path, **limits) as (base, _):
        created = manage(
            tmp_path,
            "createsuperuser",
            "--noinput",
            "--username=admin",
            "--email=admin@example.com",
            DEBUG="1",
            DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        )
        assert created.returncode == 0, created.stderr
        for _ in range(2):
            refused = admin_login(base, "wrong", forwarded_for=ATTACKER)
            assert refused.status_code == 200 and "Please enter the correct username and password" in refused.text
        locked = admin_login(base, "wrong", forwarded_for=ATTACKER)
        assert locked.status_code == 429
        assert locked.json()["code"] == "too_many_login_attempts"
        assert locked.headers["Retry-After"] == "3600"
        # The right password from the locked address waits out the cool-off,
        # and so does any other username from it.
        assert admin_login(base, ADMIN_PASSWORD, forwarded_for=ATTACKER).status_code == 429
        assert admin_login(base, "wrong", forwarded_for=ATTACKER, username="someone").status_code == 429
        # A client cannot leave its address by adding its own entry on the left.
        assert admin_login(base, ADMIN_PASSWORD, forwarded_for=f"{COLLEAGUE}, {ATTACKER}").status_code == 429
        # The same username from elsewhere is not locked out.
        colleague = admin_login(base, ADMIN_PASSWORD, forwarded_for=COLLEAGUE)
        assert colleague.status_code == 302 and colleague.headers["Location"] == "/admin/"


@pytest.mark.parametrize(
    ("forwarded_for", "remote", "expected"),
    [
        ("203.0.113.7", "10.0.0.1", "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", "10.0.0.1", "203.0.113.7"),  # the proxy's entry, not the client's
        ("", "10.0.0.1", "0.0.0.0"),  # no entry from the proxy: misconfigured, one shared bucket
        ("2001:db8:1:2:abcd::9", "10.0.0.1", "2001:db8:1:2::"),  # an IPv6 client holds its /64
        ("", "", "0.0.0.0"),
    ],
)
def test_admin_login_counts_failures_per_client_address(forwarded_for, remote, expected):
    from otpsite.admin_login import lockout_address

    request = RequestFactory().post("/admin/login/", HTTP_X_FORWARDED_FOR=forwarded_for, REMOTE_ADDR=remote)
    with override_settings(OTP={"TRUSTED_PROXY_COUNT": 1}):
        assert lockout_address(request) == expected


def test_an_address_that_cannot_be_told_shares_one_bucket(monkeypatch):
    from otpsite import admin_login

    def malformed(request):
        raise InvalidInput("X-Forwarded-For is malformed.")

    monkeypatch.setattr(admin_login, "client_ip", malformed)
    request = RequestFactory().post("/admin/login/", HTTP_X_FORWARDED_FOR="not, an, address")
    assert admin_login.lockout_address(request) == admin_login.UNKNOWN_ADDRESS


def example_variables() -> list[str]:
    """The variables .env.example documents, set or commented out."""
    text = (ROOT / ".env.example").read_text()
    return re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)


SETTINGS_DUMP = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({n: getattr(s, n) for n in dir(s) if n.isupper()}, default=repr, sort_keys=True))"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "values",
    [
        {"DEBUG": "1"},
        {"DEBUG": "0", "SECRET_KEY": "s" * 50, "DATABASE_URL": "postgres://u@db.internal:5432/otp"},
        {"DEBUG": "0", "SECRET_KEY": "s" * 50, "INFOBIP_API_KEY": "k", "REDIS_URL": "redis://127.0.0.1:6379/0"},
    ],
)
def test_an_empty_variable_means_its_default(tmp_path, values):
    # A copied .env.example leaves some variables empty: each must mean what leaving it out means.
    # OTPSITE_ENV_FILE would read the .env beside manage.py; gunicorn's are not the site's settings.
    blank = {
        name: ""
        for name in example_variables()
        if name not in values and name != "OTPSITE_ENV_FILE" and not name.startswith("GUNICORN_")
    }
    assert {"LOG_FORMAT", "LOG_LEVEL", "DATABASE_POOL", "OTP_PIN_LENGTH", "INFOBIP_READ_TIMEOUT"} <= set(blank)
    dumps = []
    for given in ({}, blank):
        env = {k: v for k, v in site_env(tmp_path, **values).items() if k not in blank} | given
        env["DJANGO_SETTINGS_MODULE"] = "otpsite.settings"
        run = [sys.executable, "-c", SETTINGS_DUMP]
        result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]
        dumps.append(json.loads(result.stdout))
    unset, empty = dumps
    assert empty == unset


@pytest.mark.slow
def test_log_format_left_empty_is_json_without_debug(tmp_path):
    code = "from django.conf import settings as s; print(s.LOGGING['handlers']['console']['formatter'])"
    result = python(tmp_path, code, SECRET_KEY="s" * 50, LOG_FORMAT="")
    assert result.stdout.strip() == "json", result.stderr


def test_gunicorn_variables_left_empty_mean_their_defaults(monkeypatch):
    names = [n for n in example_variables() if n.startswith("GUNICORN_")]
    for name in [n for n in os.environ if n.startswith("GUNICORN_")]:
        monkeypatch.delenv(name)
    defaults = runpy.run_path(str(ROOT / "otpsite" / "gunicorn.conf.py"))
    for name in names:
        monkeypatch.setenv(name, "")
    empty = runpy.run_path(str(ROOT / "otpsite" / "gunicorn.conf.py"))
    settings = [k for k, v in defaults.items() if not k.startswith("_") and isinstance(v, (int, str, type(None)))]
    assert {k: empty[k] for k in settings} == {k: defaults[k] for k in settings}
    assert "preload_app" in settings


def example_values() -> dict[str, str]:
    """The values .env.example sets (its commented-out variables are left out)."""
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))


@pytest.mark.slow
def test_the_example_environment_passes_the_deploy_checks(tmp_path):
    # The example is a production template: only the secrets and the account's IDs are left to fill.
    values = example_values() | {
        "SECRET_KEY": "example-" + "k" * 50,
        "INFOBIP_API_KEY": "example-api-key",
        "INFOBIP_2FA_APP_ID": "EXAMPLE-APP",
        "INFOBIP_2FA_MSG_ID": "EXAMPLE-MSG",
    }
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


HTTPS_PROBE = (
    "import django; django.setup(); from django.test import Client; c = Client()\n"
    "for path, headers in [('/healthz/live', {}), ('/healthz', {}), ('/admin/login/', {}),\n"
    "                      ('/admin/login/', {'HTTP_X_FORWARDED_PROTO': 'https'})]:\n"
    "    r = c.get(path, **headers)\n"
    "    print(path, r.status_code, r.get('Location', '-'), r.get('Strict-Transport-Security', '-'))"
)
PRODUCTION = {
    "SECRET_KEY": "s" * 50,
    "ALLOWED_HOSTS": "testserver",
    "OTP_PROVIDER": "otp.providers.locmem.LocmemProvider",
}


@pytest.mark.slow
def test_production_redirects_to_https_except_health_and_sends_hsts(tmp_path):
    # SECURE_SSL_REDIRECT and SECURE_HSTS_SECONDS left to their defaults.
    values = {**PRODUCTION, "SECURE_SSL_REDIRECT": "", "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"}
    result = python(tmp_path, HTTPS_PROBE, **values)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "/healthz/live 200 - -",
        "/healthz 200 - -",
        "/admin/login/ 301 https://testserver/admin/login/ -",
        "/admin/login/ 200 - max-age=31536000",  # https, as the proxy says
    ]


@pytest.mark.slow
def test_plain_http_is_served_when_asked(tmp_path):
    result = python(tmp_path, HTTPS_PROBE, **PRODUCTION, SECURE_SSL_REDIRECT="0")
    assert result.returncode == 0, result.stderr
    # Without SECURE_PROXY_SSL_HEADER the forwarded header is not believed.
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["200", "200", "200", "200"]
    assert "max-age" not in result.stdout


ERROR_PAGES_PROBE = (
    "import django; django.setup(); from django.test import Client; c = Client()\n"
    "for path in ['/no-such-page', '/send-otp/no-such-thing']:\n"
    "    r = c.get(path, HTTP_ACCEPT='text/html')\n"
    "    print(path, r.status_code, r['Content-Type'], r.content.decode().count('<h1>Not found.</h1>'))"
)


@pytest.mark.slow
def test_the_site_answers_errors_in_html_off_the_api_and_json_on_it(tmp_path):
    result = python(tmp_path, ERROR_PAGES_PROBE, **PRODUCTION, SECURE_SSL_REDIRECT="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "/no-such-page 404 text/html; charset=utf-8 1",
        "/send-otp/no-such-thing 404 application/json 0",
    ]


@pytest.mark.slow
def test_a_malformed_proxy_ssl_header_stops_the_start(tmp_path):
    result = python(
        tmp_path, "import django; django.setup()", **PRODUCTION, SECURE_PROXY_SSL_HEADER="X_FORWARDED_PROTO"
    )
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER must be a header and a value" in result.stderr
