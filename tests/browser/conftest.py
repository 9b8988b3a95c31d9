"""Browser tests: Debian's headless Chromium, driven by Selenium, against pytest-django's live server.

Every test in this folder is marked ``browser`` (``-m "not browser"`` leaves them out).

* ``browser``: a Chromium for one test, starting at ``about:blank`` with no
  cookies; when the test ends its last page is saved as a screenshot.
  ``@pytest.mark.browser(language="es")`` gives the test one whose
  ``Accept-Language`` is Spanish.
* ``browser_factory``: ``browser_factory("es")`` is the session's Chromium for
  that language, for a test that needs two at once.
* ``live_server`` (pytest-django's): the test settings' site in a thread of
  this process, at ``live_server.url``. A test that uses it is transactional:
  what it writes is committed, so the server's thread sees it, and the tables
  are emptied after it. On SQLite in memory the thread shares the test's
  connection. ``settings`` changes reach the server too (``MIDDLEWARE`` as
  well, through ``live_server_middleware``).
* ``outbox`` (tests/conftest.py): the locmem provider's messages. The server
  runs in this process, so it holds what the server sent: ``outbox[-1].pin``.
* ``screenshot``: ``screenshot("form")`` saves the page now, as
  ``tests/browser/output/<module>.<test>-form.png``.
* ``assert_accessible``: runs axe-core (shipped by axe-selenium-python) on the
  page and fails on any violation of impact serious or critical, listing them.
* ``console_errors``: ``console_errors()`` is what the browser's console said
  at level SEVERE (script errors, refused resources, CSP violations) since the
  last call.
* ``otpsite``: the live server serves otpsite's URLs, templates and
  Content-Security-Policy: the verification pages are its home page.

Chromium and ChromeDriver come from Debian (``apt-get install chromium
chromium-driver``) and are never downloaded: Selenium is given both paths, so
its driver manager never runs. Without them the tests skip; with
``OTP_TESTS_REQUIRE_BROWSER=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_selenium_python import Axe
from django.test.signals import setting_changed
from pytest_django.live_server_helper import LiveServer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

BROWSER_DIR = Path(__file__).resolve().parent
ROOT = BROWSER_DIR.parent.parent
OUTPUT_DIR = BROWSER_DIR / "output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING = "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
DEFAULT_LANGUAGE = "en"
# Headless in a container on a closed network: no sandbox (root), no GPU, no
# small /dev/shm, and none of the background calls home.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
# Violations at these impacts fail a test; "moderate" and "minor" do not.
BLOCKING_IMPACTS = ("serious", "critical")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``browser``."""
    for item in items:
        if BROWSER_DIR in item.path.parents:
            item.add_marker(pytest.mark.browser)


def chromium_options(language: str, profile_dir: str) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    # The interface language, and the Accept-Language header pages receive.
    options.add_argument(f"--lang={language}")
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    # Every console message is kept for driver.get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def require_browser() -> None:
    """Skip without Debian's Chromium, or fail when the run says a browser is required."""
    if all(os.access(path, os.X_OK) for path in (CHROMIUM, CHROMEDRIVER)):
        return
    if os.environ.get("OTP_TESTS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"OTP_TESTS_REQUIRE_BROWSER=1, but this test {MISSING}")
    pytest.skip(MISSING)


@pytest.fixture(scope="session")
def browser_factory(live_server: LiveServer) -> Iterator[Callable[[str], WebDriver]]:
    """``browser_factory(language)``: one Chromium per language, started on first use, kept for the session.

    The live server is started first so that it stops last: Chromium's
    keep-alive connections end when it quits, while the server still shares
    the test database's connection with the threads that serve them.
    """
    require_browser()
    # Belt and braces: should Selenium ever reach for its driver manager, it may not download.
    os.environ["SE_OFFLINE"] = "true"
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    drivers: dict[str, WebDriver] = {}
    profiles: list[str] = []

    def start(language: str = DEFAULT_LANGUAGE) -> WebDriver:
        if language not in drivers:
            profiles.append(tempfile.mkdtemp(prefix=f"otp-chromium-{language}-"))
            driver = webdriver.Chrome(
                service=Service(executable_path=str(CHROMEDRIVER)),
                options=chromium_options(language, profiles[-1]),
            )
            driver.set_page_load_timeout(30)
            driver.set_script_timeout(30)
            drivers[language] = driver
        return drivers[language]

    yield start
    for driver in drivers.values():
        driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


def _language(request: pytest.FixtureRequest) -> str:
    for mark in request.node.iter_markers("browser"):
        if "language" in mark.kwargs:
            return str(mark.kwargs["language"])
    return DEFAULT_LANGUAGE


def screenshot_path(request: pytest.FixtureRequest, step: str = "") -> Path:
    """``tests/browser/output/<module>.<test>[-<step>].png``, with parameters kept readable."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{request.node.path.stem}.{request.node.name}").strip("_")
    return OUTPUT_DIR / (name + (f"-{step}" if step else "") + ".png")


def _save(driver: WebDriver, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))


@pytest.fixture
def browser(request: pytest.FixtureRequest, browser_factory: Callable[[str], WebDriver]) -> Iterator[WebDriver]:
    """The session's Chromium for this test's language, cleared before the test, photographed after."""
    driver = browser_factory(_language(request))
    reset(driver)
    yield driver
    _save(driver, screenshot_path(request))
    reset(driver)


def reset(driver: WebDriver) -> None:
    """No page and no cookie of a previous test (for every site, not only the current page's)."""
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, browser: WebDriver) -> Callable[..., Path]:
    """``screenshot("step", driver=None)``: save the page now; returns the file's path."""

    def take(step: str, driver: WebDriver | None = None) -> Path:
        path = screenshot_path(request, step)
        _save(driver or browser, path)
        return path

    return take


def blocking_violations(
    driver: WebDriver, context: Any = None, known: Collection[tuple[str, str]] = ()
) -> tuple[list[dict[str, Any]], str]:
    """axe-core's violations of impact serious or critical on the page (or in ``context``), and their report.

    ``known``: ``(rule, selector)`` pairs: that rule's violations on elements
    matching the CSS selector are left out. Each is a fault of markup that is
    not the project's; say whose and why where it is given.
    """
    axe = Axe(driver)
    axe.inject()
    results = axe.run(context=context)
    violations = []
    for violation in results["violations"]:
        if violation.get("impact") not in BLOCKING_IMPACTS:
            continue
        excused = [selector for rule, selector in known if rule == violation["id"]]
        nodes = [node for node in violation["nodes"] if not _matches_any(driver, node["target"], excused)]
        if nodes:
            violations.append({**violation, "nodes": nodes})
    return violations, axe.report(violations)


def _matches_any(driver: WebDriver, target: list[str], selectors: list[str]) -> bool:
    """Whether the element axe names by ``target`` (in the top document) matches one of ``selectors``."""
    if not selectors or len(target) != 1:
        return False
    return bool(
        driver.execute_script(
            "const element = document.querySelector(arguments[0]);"
            "return !!element && arguments[1].some(selector => element.matches(selector));",
            target[0],
            selectors,
        )
    )


@pytest.fixture
def assert_accessible(browser: WebDriver) -> Callable[..., None]:
    """``assert_accessible(context=None, known=(), driver=None)``: fail on serious or critical axe-core violations.

    ``context`` is axe's: a CSS selector (``"#content"``), or
    ``{"include": [["#content"]], "exclude": [["#header"]]}``; by default the
    whole page. ``known``: ``(rule, selector)`` pairs to leave out, see
    :func:`blocking_violations`.
    """

    def check(context: Any = None, known: Collection[tuple[str, str]] = (), driver: WebDriver | None = None) -> None:
        driver = driver or browser
        violations, report = blocking_violations(driver, context, known)
        if violations:
            pytest.fail(f"axe-core on {driver.current_url} ({context or 'the whole page'}):\n{report}", pytrace=False)

    return check


@pytest.fixture
def console_errors(browser: WebDriver) -> Callable[[], list[str]]:
    """``console_errors()``: the console's SEVERE messages since the last call (the first call empties it)."""

    assert isinstance(browser, webdriver.Chrome)  # the log is ChromeDriver's

    def read() -> list[str]:
        return [
            entry["message"]
            for entry in browser.get_log("browser")
            # No page of the project has an icon; the browser asks for one anyway.
            if entry["level"] == "SEVERE" and "/favicon.ico " not in entry["message"]
        ]

    read()  # what earlier tests left in the session's browser
    return read


@pytest.fixture(scope="session")
def live_server_middleware(live_server: LiveServer) -> Iterator[None]:
    """From now on, a change of ``settings.MIDDLEWARE`` (and its restoring) reaches the live server.

    Django's handler reads the list once, when the server starts; this loads
    it again whenever the setting changes, between two requests of a test.
    """

    def reload(*, setting: str, **kwargs: Any) -> None:
        if setting != "MIDDLEWARE":
            return
        # Django's handler, wrapped in the media and static files handlers;
        # the media one (MEDIA_URL is "") answers every path with a chain of its own.
        application: Any = live_server.thread.httpd.get_app()
        while application is not None:
            application.load_middleware()
            application = getattr(application, "application", None)

    setting_changed.connect(reload)
    yield
    setting_changed.disconnect(reload)


@pytest.fixture
def otpsite(settings: Any, live_server_middleware: None) -> None:
    """The live server serves otpsite's URLs, error handlers, templates and the pages' Content-Security-Policy.

    The rest stays the test settings' (the locmem provider, the relaxed
    limits): the verification pages are the home page, in otpsite's frame.
    """
    settings.ROOT_URLCONF = "otpsite.urls"
    engine = settings.TEMPLATES[0]
    options = {**engine["OPTIONS"]}
    options["context_processors"] = [*options["context_processors"], "otpsite.context.site"]
    settings.TEMPLATES = [{**engine, "DIRS": [ROOT / "otpsite" / "templates"], "OPTIONS": options}]
    settings.MIDDLEWARE = ["otpsite.csp.PagesPolicyMiddleware", *settings.MIDDLEWARE]
    settings.OTP = {**settings.OTP, "WEB_BASE_TEMPLATE": "otpsite/base.html"}
