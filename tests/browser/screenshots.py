"""The documentation's screenshots of otpsite's home page: the number page and the code page.

``scripts/screenshots`` runs it. It starts the development site as
tests/test_site.py does (runserver, DEBUG on, SQLite in a temporary folder),
with the locmem provider so that the pages show no development hint, and
photographs them with the browser tests' headless Chromium at a narrow width,
each page at its full height. With ``optipng`` (Debian's package) on the
PATH the files are recompressed, losslessly.

    .venv/bin/python -m tests.browser.screenshots [--out docs/_static/screenshots] [--width 520]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.conftest import CHROMEDRIVER, CHROMIUM, ROOT, chromium_options
from tests.test_site import site_server

OUT = ROOT / "docs" / "_static" / "screenshots"
WIDTH = 520
PHONE = "+1 415 555 2671"


def set_viewport(driver: WebDriver, width: int, height: int) -> None:
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def capture(driver: WebDriver, path: Path, width: int) -> None:
    """The page down to the end of its content, with nothing focused (no caret, no focus ring)."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    height = driver.execute_script("return Math.ceil(document.body.getBoundingClientRect().bottom)")
    set_viewport(driver, width, height)
    path.write_bytes(driver.get_screenshot_as_png())
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-strip", "all", "-o5", str(path)], check=True)
    print(f"{path}: {path.stat().st_size // 1024} KiB")


def take(base: str, out: Path, width: int) -> None:
    """Type a number on the home page, photograph it; send, wait for the code page's script, photograph it."""
    profile = tempfile.mkdtemp(prefix="otp-screenshots-")
    options = chromium_options("en", profile)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        set_viewport(driver, width, 600)
        driver.get(base + "/")
        driver.find_element(By.ID, "id_phone_number").send_keys(PHONE)
        capture(driver, out / "enter-number.png", width)
        set_viewport(driver, width, 600)
        driver.find_element(By.ID, "otp-send").click()
        wait = WebDriverWait(driver, 10)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "id_code")))
        # The script has started counting the resend wait down (m:ss).
        wait.until(lambda d: ":" in d.find_element(By.ID, "otp-resend-status").text)
        capture(driver, out / "enter-code.png", width)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the folder to write the PNG files to")
    parser.add_argument("--width", type=int, default=WIDTH, help="the window's width in CSS pixels")
    args = parser.parse_args()
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise SystemExit("needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="otp-screenshots-site-") as folder,
        site_server(Path(folder), OTP_PROVIDER="otp.providers.locmem.LocmemProvider") as (base, _),
    ):
        take(base, args.out, args.width)


if __name__ == "__main__":
    main()
