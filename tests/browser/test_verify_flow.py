"""The HTML verification pages in a real browser: typed, tabbed, read by axe, in English and Spanish.

tests/urls.py serves the pages at /phone/; the ``otpsite`` fixture serves
them as otpsite's home page, in its frame and under its Content-Security-Policy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import PHONE

START = "/phone/"
VERIFY = "/phone/verify/"
DONE = "/phone/verified/"
SHOWN_PHONE = "+1 415-555-2671"
WAIT = 10
# A fault of axe-core, not of the page: the axe-core that axe-selenium-python
# ships for Python 3.11 (3.1) predates HTML's "one-time-code" autofill token
# and calls the code field's autocomplete malformed; axe-core 4 accepts it.
# Every other rule still runs on the field.
OLD_AXE = [("autocomplete-valid", "#id_code")]


def wrong(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


def wait(browser: WebDriver) -> WebDriverWait:
    return WebDriverWait(browser, WAIT)


@contextmanager
def next_page(browser: WebDriver) -> Iterator[None]:
    """Wait, after the block, until the browser has loaded another page (the same URL again counts)."""
    browser.execute_script("window.leftBehind = true")

    def arrived(driver: WebDriver) -> bool:
        return bool(driver.execute_script("return !window.leftBehind && document.readyState === 'complete'"))

    yield
    # While the old page is torn down, ChromeDriver may answer with errors of its own: ask again.
    WebDriverWait(browser, WAIT, ignored_exceptions=(WebDriverException,)).until(arrived, "no new page loaded")


def path(browser: WebDriver) -> str:
    return str(browser.execute_script("return location.pathname"))


def focused_id(browser: WebDriver) -> str:
    return str(browser.execute_script("return document.activeElement.id"))


def wait_for_focus(browser: WebDriver, element_id: str) -> None:
    """``autofocus`` moves the focus when the page is next rendered, which may be just after it loaded."""
    wait(browser).until(lambda driver: focused_id(driver) == element_id, f"the focus never reached #{element_id}")


def element(browser: WebDriver, element_id: str) -> WebElement:
    return browser.find_element(By.ID, element_id)


def session_cookie(browser: WebDriver) -> str | None:
    cookie = browser.get_cookie("sessionid")
    return cookie["value"] if cookie else None


def send_code(browser: WebDriver, url: str, phone: str = PHONE) -> None:
    """On the start page at ``url``: type ``phone`` and send; the browser is then on the code page."""
    browser.get(url)
    element(browser, "id_phone_number").send_keys(phone)
    with next_page(browser):
        element(browser, "otp-send").click()


def type_code(browser: WebDriver, code: str) -> None:
    """On the code page: type ``code`` and submit it."""
    field = element(browser, "id_code")
    field.clear()
    field.send_keys(code)
    with next_page(browser):
        element(browser, "otp-verify").click()


def described_by(field: WebElement) -> list[str]:
    return (field.get_attribute("aria-describedby") or "").split()


# -- the flow -----------------------------------------------------------------------


def test_a_national_number_then_the_code_from_the_sms(browser, live_server, outbox, settings, screenshot):
    settings.OTP = {**settings.OTP, "DEFAULT_REGION": "US"}
    browser.get(live_server.url + START)
    wait_for_focus(browser, "id_phone_number")
    hint = element(browser, "id_phone_number_helptext").text
    assert "or enter a national number such as (" in hint
    element(browser, "id_phone_number").send_keys("(415) 555-2671")
    screenshot("number")
    with next_page(browser):
        element(browser, "otp-send").click()

    assert path(browser) == VERIFY
    assert [message.phone for message in outbox] == [PHONE]
    wait_for_focus(browser, "id_code")
    code = element(browser, "id_code")
    assert {name: code.get_attribute(name) for name in ("type", "inputmode", "autocomplete", "maxlength")} == {
        "type": "text",
        "inputmode": "numeric",
        "autocomplete": "one-time-code",
        "maxlength": "6",
    }
    assert element(browser, "otp-notice").text == f"We sent a code to {SHOWN_PHONE}."
    before = session_cookie(browser)
    assert before  # the send started the session
    screenshot("code")

    # Typed where the focus already is.
    ActionChains(browser).send_keys(outbox[-1].pin).perform()
    with next_page(browser):
        element(browser, "otp-verify").click()

    assert path(browser) == DONE
    assert element(browser, "otp-verified-phone").text == f"{SHOWN_PHONE} is verified."
    after = session_cookie(browser)
    assert after and after != before


def test_a_wrong_code_is_shown_beside_the_field(browser, live_server, outbox, screenshot):
    send_code(browser, live_server.url + START)
    type_code(browser, wrong(outbox[-1].pin))

    assert path(browser) == VERIFY
    assert browser.find_element(By.TAG_NAME, "h1").text == "Enter the code"
    error = element(browser, "id_code_error")
    assert error.is_displayed() and error.text == "Invalid or expired code."
    code = element(browser, "id_code")
    assert code.get_attribute("aria-invalid") == "true"
    assert "id_code_error" in described_by(code)
    summary = element(browser, "otp-error-summary")
    assert summary.get_attribute("role") == "alert" and summary.is_displayed()
    assert "Invalid or expired code." in summary.text
    screenshot("wrong-code")

    # The summary's link leads to the field.
    summary.find_element(By.CSS_SELECTOR, "a[href='#id_code']").click()
    wait_for_focus(browser, "id_code")
    # Still on the code step: the right code verifies.
    type_code(browser, outbox[-1].pin)
    assert path(browser) == DONE


@pytest.fixture
def cooldown(settings):
    """The resend cooldown back on (the test settings turn every limit off)."""
    settings.OTP = {**settings.OTP, "RESEND_COOLDOWN_SECONDS": 60, "RESEND_COOLDOWN_MAX_SECONDS": 900}


def test_an_early_resend_is_refused_by_the_server(browser, live_server, outbox, cooldown, screenshot, console_errors):
    send_code(browser, live_server.url + START)
    resend = element(browser, "otp-resend")
    assert resend.get_attribute("data-wait") == "60"
    # The script counts the wait down and keeps the button disabled meanwhile.
    status = element(browser, "otp-resend-status")
    wait(browser).until(lambda _: re.fullmatch(r"You can ask for a new code in (1:00|0:[0-5]\d)\.", status.text))
    assert not resend.is_enabled()
    screenshot("waiting")

    # The button enabled by hand: the server still refuses.
    browser.execute_script("arguments[0].disabled = false", resend)
    with next_page(browser):
        resend.click()

    assert path(browser) == "/phone/resend/"
    refusal = "Too many requests. Please try again later. You can try again in 1 minute."
    assert element(browser, "otp-resend-error").text == refusal
    assert refusal in element(browser, "otp-error-summary").text
    assert described_by(element(browser, "otp-resend")) == ["otp-resend-status", "otp-resend-error"]
    assert len(outbox) == 1
    # The refused page counts down again, and still verifies the code.
    wait(browser).until(lambda driver: not element(driver, "otp-resend").is_enabled())
    screenshot("refused")
    # The 429 answer is the console's only complaint.
    assert [message for message in console_errors() if "status of 429" not in message] == []
    type_code(browser, outbox[-1].pin)
    assert path(browser) == DONE


@pytest.mark.browser(language="es")
def test_a_spanish_browser_gets_the_pages_in_spanish(browser, live_server, outbox):
    browser.get(live_server.url + START)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    assert browser.find_element(By.CSS_SELECTOR, "label[for=id_phone_number]").text == "Número de teléfono"
    assert element(browser, "otp-send").text == "Enviar código"

    send_code(browser, live_server.url + START)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Introduzca el código"
    assert element(browser, "otp-notice").text == f"Hemos enviado un código a {SHOWN_PHONE}."
    assert element(browser, "otp-verify").text == "Verificar"
    type_code(browser, wrong(outbox[-1].pin))
    assert element(browser, "id_code_error").text == "Código no válido o caducado."
    type_code(browser, outbox[-1].pin)
    assert element(browser, "otp-verified-phone").text == f"{SHOWN_PHONE} está verificado."


def test_the_keyboard_alone_goes_through(browser, live_server, outbox, screenshot):
    """Keys go to whatever has the focus; nothing is clicked."""
    keyboard = ActionChains(browser)
    browser.get(live_server.url + START)
    wait_for_focus(browser, "id_phone_number")
    keyboard.send_keys("+1 415 555 2671", Keys.TAB).perform()
    assert focused_id(browser) == "otp-send"
    with next_page(browser):
        ActionChains(browser).send_keys(Keys.ENTER).perform()

    assert path(browser) == VERIFY
    wait_for_focus(browser, "id_code")
    # Enter in the field submits its form, as a form with a submit button does.
    ActionChains(browser).send_keys(wrong(outbox[-1].pin)).perform()
    with next_page(browser):
        ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert element(browser, "id_code_error").is_displayed()
    wait_for_focus(browser, "id_code")
    screenshot("error")

    # Select the wrong code, type over it, then Tab to the button.
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    ActionChains(browser).send_keys(outbox[-1].pin, Keys.TAB).perform()
    assert focused_id(browser) == "otp-verify"
    with next_page(browser):
        ActionChains(browser).send_keys(Keys.ENTER).perform()

    assert path(browser) == DONE
    assert element(browser, "otp-verified-phone").text == f"{SHOWN_PHONE} is verified."


# -- accessibility ------------------------------------------------------------------

LANGUAGES = [
    pytest.param("en", id="en"),
    pytest.param("es", id="es", marks=pytest.mark.browser(language="es")),
]


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_serious_accessibility_fault_on_any_page(browser, live_server, outbox, language, assert_accessible):
    browser.get(live_server.url + START)
    assert_accessible(known=OLD_AXE)
    with next_page(browser):
        element(browser, "otp-send").click()  # no number
    assert element(browser, "id_phone_number_error").is_displayed()
    assert_accessible(known=OLD_AXE)

    send_code(browser, live_server.url + START)
    assert path(browser) == VERIFY
    assert_accessible(known=OLD_AXE)
    type_code(browser, wrong(outbox[-1].pin))
    assert element(browser, "id_code_error").is_displayed()
    assert_accessible(known=OLD_AXE)
    type_code(browser, outbox[-1].pin)
    assert path(browser) == DONE and element(browser, "otp-verified-phone")
    assert_accessible(known=OLD_AXE)


# -- otpsite's home page ------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_otpsite_home_page_under_its_content_security_policy(
    browser, live_server, otpsite, outbox, cooldown, language, console_errors, assert_accessible, screenshot
):
    browser.get(live_server.url + "/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
    assert browser.find_elements(By.CSS_SELECTOR, "header.otpsite-header") and browser.find_elements(By.ID, "otp-send")
    # Not the development site: no hint about codes in a terminal.
    assert not browser.find_elements(By.ID, "otpsite-dev-hint")
    # The site's links stand apart from the form's button.
    button = element(browser, "otp-send").rect
    links = browser.find_element(By.CSS_SELECTOR, "footer.otpsite-footer a").rect
    assert links["y"] - (button["y"] + button["height"]) >= 12
    assert_accessible(known=OLD_AXE)

    send_code(browser, live_server.url + "/")
    assert path(browser) == "/verify/"
    # The script ran under the policy: the countdown replaced the server's text.
    status = element(browser, "otp-resend-status")
    wait(browser).until(lambda _: re.search(r"\d:\d\d", status.text))
    assert not element(browser, "otp-resend").is_enabled()
    # And the stylesheet applied (its font stack).
    assert "system-ui" in browser.execute_script("return getComputedStyle(document.body).fontFamily")
    assert_accessible(known=OLD_AXE)
    screenshot("code")

    type_code(browser, outbox[-1].pin)
    assert path(browser) == "/verified/"
    assert_accessible(known=OLD_AXE)
    assert console_errors() == []


# -- WebOTP -------------------------------------------------------------------------

# Runs before the page's own scripts: navigator.credentials.get() answers a
# WebOTP request with a promise the test settles (window.webotpStub.deliver),
# and says in sessionStorage, which outlives the page, what was asked and
# whether the request was aborted while it was still pending.
WEBOTP_STUB = """
(() => {
  const note = (key, value) => sessionStorage.setItem("webotp-stub:" + key, JSON.stringify(value));
  window.OTPCredential = window.OTPCredential || function OTPCredential() {};
  const container = navigator.credentials || {};
  if (!navigator.credentials) {
    Object.defineProperty(navigator, "credentials", {value: container, configurable: true});
  }
  container.get = options => new Promise((resolve, reject) => {
    let pending = true;
    note("asked", {otp: options.otp, signal: options.signal instanceof AbortSignal});
    window.webotpStub = {
      deliver(code) { pending = false; resolve({type: "otp", id: "", code}); },
    };
    if (options.signal) {
      options.signal.addEventListener("abort", () => {
        note("aborted while pending", pending);
        if (pending) {
          pending = false;
          reject(new DOMException("The request was aborted.", "AbortError"));
        }
      });
    }
  });
})();
"""


@pytest.fixture
def webotp_stub(browser: WebDriver) -> Iterator[Callable[[str], Any]]:
    """A browser whose every new page has the stub; ``webotp_stub(key)`` reads what it noted (None: nothing)."""
    added = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WEBOTP_STUB})

    def noted(key: str) -> Any:
        return browser.execute_script(
            "const value = sessionStorage.getItem(arguments[0]); return value && JSON.parse(value);",
            f"webotp-stub:{key}",
        )

    try:
        yield noted
    finally:
        # The browser serves the session's later tests.
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})


def open_code_page_with_webotp(browser: WebDriver, url: str, noted: Callable[[str], Any]) -> None:
    browser.get(url + START)
    browser.execute_script("sessionStorage.clear()")  # what an earlier test noted
    send_code(browser, url + START)
    wait(browser).until(lambda _: noted("asked"), "the page never asked for the code")
    assert noted("asked") == {"otp": {"transport": ["sms"]}, "signal": True}


def test_webotp_fills_in_the_code_and_submits_it(browser, live_server, outbox, webotp_stub, screenshot):
    open_code_page_with_webotp(browser, live_server.url, webotp_stub)
    assert element(browser, "id_code").get_attribute("value") == ""
    screenshot("asked")

    # The user taps "Allow" on the browser's prompt.
    with next_page(browser):
        browser.execute_script("window.webotpStub.deliver(arguments[0])", outbox[-1].pin)

    assert path(browser) == DONE
    assert element(browser, "otp-verified-phone").text == f"{SHOWN_PHONE} is verified."
    # Nothing aborted the request before it answered.
    assert webotp_stub("aborted while pending") is not True


def test_submitting_by_hand_aborts_the_webotp_request(browser, live_server, outbox, webotp_stub):
    open_code_page_with_webotp(browser, live_server.url, webotp_stub)
    type_code(browser, outbox[-1].pin)

    assert path(browser) == DONE
    assert webotp_stub("aborted while pending") is True


def test_the_script_runs_without_a_console_error(browser, live_server, outbox, cooldown, console_errors):
    """Headless Chromium has OTPCredential but no SMS to read: the real request stays pending or fails quietly."""
    send_code(browser, live_server.url + START)
    status = element(browser, "otp-resend-status")
    wait(browser).until(lambda _: re.search(r"\d:\d\d", status.text))
    type_code(browser, outbox[-1].pin)
    assert path(browser) == DONE
    assert console_errors() == []
