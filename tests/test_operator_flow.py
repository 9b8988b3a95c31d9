"""An operator's first day, with only the emulator as Infobip: provision, serve, inspect, clean up."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import requests

from otp.emulator import running_emulator
from tests.test_site import ROOT, free_port, manage, site_env, wait_until_serving

# Each test starts processes of its own: seconds, not milliseconds.
pytestmark = pytest.mark.slow

API_KEY = "operator-flow-key"


@pytest.fixture
def emulator():
    with running_emulator(api_key=API_KEY) as server:
        yield server


def test_provision_serve_inspect_and_clean_up(tmp_path, emulator):
    env_file = tmp_path / "site.env"
    env_file.write_text("# the operator's settings\nDEBUG=1\nOTP_CODE_TTL_SECONDS=2\n")
    infobip = {"INFOBIP_API_KEY": API_KEY, "INFOBIP_BASE_URL": emulator.base_url, "OTPSITE_ENV_FILE": str(env_file)}

    # 1. Provisioning creates the application and template and writes their IDs.
    result = manage(tmp_path, "otp_provision", "--write-env", str(env_file), **infobip)
    assert result.returncode == 0, result.stderr
    ids = dict(re.findall(r"^(INFOBIP_2FA_(?:APP|MSG)_ID)=(\S+)$", result.stdout, re.M))
    assert set(ids) == {"INFOBIP_2FA_APP_ID", "INFOBIP_2FA_MSG_ID"}
    written = env_file.read_text()
    assert written.startswith("# the operator's settings\nDEBUG=1\n")
    assert all(f"{key}={value}" in written for key, value in ids.items())
    assert API_KEY not in result.stdout + result.stderr
    again = manage(tmp_path, "otp_provision", "--check", **infobip)
    assert again.returncode == 0, again.stdout + again.stderr

    # 2. The site, started with them, sends and verifies through the Infobip provider.
    assert manage(tmp_path, "migrate", "-v0", **infobip).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=site_env(tmp_path, **infobip),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base)
        assert requests.post(f"{base}/send-otp", json={"phoneNumber": "+1 415 555 2671"}, timeout=5).ok
        pin = requests.get(f"{emulator.base_url}/_emulator/pins/last", params={"to": "14155552671"}, timeout=5)
        verified = requests.post(
            f"{base}/verify-otp", json={"phoneNumber": "+14155552671", "pin": pin.json()["pin"]}, timeout=5
        )
        assert verified.status_code == 200

        # 3. The admin shows the attempt, masked.
        created = manage(
            tmp_path,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.create_superuser('ops', 'ops@example.com', 'pw-for-tests-only')",
            **infobip,
        )
        assert created.returncode == 0, created.stderr
        session = requests.Session()
        login_page = session.get(f"{base}/admin/login/", timeout=5)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
        assert csrf is not None
        token = csrf.group(1)
        session.post(
            f"{base}/admin/login/?next=/admin/",
            timeout=5,
            headers={"Referer": f"{base}/admin/login/"},
            data={"username": "ops", "password": "pw-for-tests-only", "csrfmiddlewaretoken": token},
        )
        listing = session.get(f"{base}/admin/otp/otpattempt/", timeout=5)
        assert listing.status_code == 200
        assert "+1********71" in listing.text and "4155552671" not in listing.text
        assert pin.json()["pinId"] not in listing.text
    finally:
        server.terminate()
        server.wait(timeout=10)

    # 4. Cleanup removes it once its retention has passed.
    time.sleep(2.5)  # the 2-second code has expired
    kept = manage(tmp_path, "otp_cleanup", "--retention-days", "1", **infobip)
    assert kept.returncode == 0 and "0" in kept.stdout
    purged = manage(tmp_path, "otp_cleanup", "--retention-days", "0", **infobip)
    assert purged.returncode == 0, purged.stderr
    count = manage(
        tmp_path, "shell", "-c", "from otp.models import OtpAttempt; print(OtpAttempt.objects.count())", **infobip
    )
    assert count.stdout.strip().splitlines()[-1] == "0"


def test_origin_bound_codes_from_the_environment(tmp_path, emulator):
    env_file = tmp_path / "site.env"
    env_file.write_text("DEBUG=1\nOTP_WEBOTP_DOMAIN=example.com\n")
    infobip = {"INFOBIP_API_KEY": API_KEY, "INFOBIP_BASE_URL": emulator.base_url, "OTPSITE_ENV_FILE": str(env_file)}

    result = manage(tmp_path, "otp_provision", "--write-env", str(env_file), **infobip)
    assert result.returncode == 0, result.stderr
    ids = dict(re.findall(r"^(INFOBIP_2FA_\w+_ID)=(\S+)$", env_file.read_text(), re.M))
    assert set(ids) == {"INFOBIP_2FA_APP_ID", "INFOBIP_2FA_MSG_ID", "INFOBIP_2FA_VOICE_MSG_ID"}
    templates = emulator.emulator.apps[ids["INFOBIP_2FA_APP_ID"]].templates
    assert templates[ids["INFOBIP_2FA_MSG_ID"]]["messageText"].endswith("\n\n@example.com #{{pin}}")
    assert "@" not in templates[ids["INFOBIP_2FA_VOICE_MSG_ID"]]["messageText"]

    # The site reads all three IDs: no warning that calls would read the SMS template.
    checked = manage(tmp_path, "check", **infobip)
    assert checked.returncode == 0 and "otp.W015" not in checked.stdout + checked.stderr
    assert manage(tmp_path, "otp_provision", "--check", **infobip).returncode == 0

    # Without the voice template's ID, the site warns.
    env_file.write_text(env_file.read_text().replace("INFOBIP_2FA_VOICE_MSG_ID=", "OLD_VOICE_ID="))
    warned = manage(tmp_path, "check", **infobip)
    assert "otp.W015" in warned.stdout + warned.stderr
