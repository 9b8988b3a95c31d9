"""What the browser tests stand on: the browser's requests reach a server that shares this process's outbox."""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import PHONE

# fetch() from the page, as the site's own scripts call the API.
POST_JSON = """
const [path, body, done] = arguments;
fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
  .then(response => response.json().then(json => done({status: response.status, body: json})))
  .catch(error => done({status: 0, body: String(error)}));
"""


def post_json(browser: WebDriver, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return browser.execute_async_script(POST_JSON, path, body)


def test_the_pin_the_server_sends_is_in_the_tests_outbox(browser, live_server, outbox):
    browser.get(live_server.url + "/healthz")
    assert post_json(browser, "/send-otp", {"phoneNumber": PHONE})["status"] == 200
    assert [message.phone for message in outbox] == [PHONE]

    answer = post_json(browser, "/verify-otp", {"phoneNumber": PHONE, "pin": outbox[-1].pin})
    assert answer["status"] == 200 and set(answer["body"]) == {"message", "verificationToken"}


@pytest.mark.browser(language="es")
def test_a_spanish_browser_sends_accept_language_es(browser, live_server):
    browser.get(live_server.url + "/healthz")
    assert browser.execute_script("return navigator.languages") == ["es"]
    answer = post_json(browser, "/verify-otp", {"phoneNumber": PHONE, "pin": "000000"})
    assert answer["status"] == 401
    assert answer["body"] == {"error": "OTP no válido o caducado.", "code": "invalid_or_expired"}
