"""The built wheel installs into a fresh virtualenv and works in a site that is not otpsite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

# Each test builds or installs a wheel: seconds, not milliseconds.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SECRET_KEY = "throwaway"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "rest_framework", "otp"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
ROOT_URLCONF = "shop.urls"
USE_TZ = True
OTP = {"PROVIDER": "otp.providers.locmem.LocmemProvider"}
"""
URLS = """
from django.urls import include, path
urlpatterns = [path("phone/", include("otp.urls"))]
"""
FLOW = """
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from otp.providers import locmem
call_command("migrate", verbosity=0)
client = Client()
sent = client.post("/phone/send-otp", {"phoneNumber": "+14155552671"}, content_type="application/json")
assert sent.status_code == 200, sent.content
pin = locmem.outbox[-1].pin
verified = client.post("/phone/verify-otp", {"phoneNumber": "+14155552671", "pin": pin},
                       content_type="application/json")
assert verified.status_code == 200, verified.content
print("FLOW OK", verified.json()["message"])
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)], check=True, timeout=300
    )
    (built,) = out.glob("*.whl")
    return built


def test_wheel_holds_the_app_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "otp/py.typed" in names and "otp/migrations/0001_initial.py" in names
    assert "otp/locale/es/LC_MESSAGES/django.mo" in names
    # The HTML pages' templates and static files.
    assert "otp/templates/otp/web/verify.html" in names and "otp/static/otp/web/webotp.js" in names
    assert not [n for n in names if n.startswith(("tests/", "otpsite/", "bench/"))]


def test_wheel_works_in_a_fresh_site(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    site = tmp_path / "site"
    (site / "shop").mkdir(parents=True)
    (site / "shop" / "__init__.py").write_text("")
    (site / "shop" / "settings.py").write_text(textwrap.dedent(SETTINGS))
    (site / "shop" / "urls.py").write_text(textwrap.dedent(URLS))
    (site / "flow.py").write_text(textwrap.dedent(FLOW))
    result = subprocess.run(
        [str(python), "flow.py"],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DJANGO_SETTINGS_MODULE": "shop.settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "FLOW OK OTP verified successfully." in result.stdout
    check = subprocess.run(
        [str(python), "-c", "import otp, django_ratelimit, phonenumbers; print(otp.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "0.1.0"
