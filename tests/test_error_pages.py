"""otpsite's error pages: the API's JSON on its paths, HTML pages elsewhere (DEBUG off)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.test import Client

from otpsite.errors import BARE_SERVER_ERROR

ROOT = Path(__file__).resolve().parent.parent
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
ERRORS = {
    400: ("Bad request.", "bad_request"),
    403: ("Forbidden.", "forbidden"),
    404: ("Not found.", "not_found"),
    500: ("Internal server error.", "server_error"),
}
STATUSES = list(ERRORS)


def broken_context_processor(request):
    raise RuntimeError("a context processor that fails")


@pytest.fixture
def site(settings):
    """otpsite's URLs and handlers, its templates, and views that fail (tests/error_urls.py)."""
    assert settings.DEBUG is False
    settings.ROOT_URLCONF = "tests.error_urls"
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [ROOT / "otpsite" / "templates"]}]
    return Client(raise_request_exception=False)


def assert_json(response, status: int, message: str | None = None, code: str | None = None) -> None:
    default_message, default_code = ERRORS[status]
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": message or default_message, "code": code or default_code}


def assert_html(response, status: int, heading: str | None = None, language: str = "en") -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert html.startswith("<!DOCTYPE html>") and f'<html lang="{language}">' in html
    assert f"<h1>{heading or ERRORS[status][0]}</h1>" in html


@pytest.mark.parametrize("status", STATUSES)
def test_an_error_on_an_api_path_is_json_even_for_a_browser(site, status):
    assert_json(site.get(f"/send-otp/fail/{status}", HTTP_ACCEPT=BROWSER_ACCEPT), status)


@pytest.mark.parametrize("status", STATUSES)
def test_an_error_elsewhere_is_an_html_page(site, status):
    assert_html(site.get(f"/page/fail/{status}", HTTP_ACCEPT=BROWSER_ACCEPT), status)


@pytest.mark.parametrize("status", STATUSES)
def test_an_error_elsewhere_is_json_for_a_client_that_asks_for_json(site, status):
    assert_json(site.get(f"/page/fail/{status}", HTTP_ACCEPT="application/json"), status)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/no-such-page", "html"),
        ("/send-otpx", "html"),  # only the endpoint's own path and those under it are the API's
        ("/send-otp/no-such-thing", "json"),
        ("/verify-otp/a/b", "json"),
        ("/resend-otp/x", "json"),
        ("/healthz/no-such-check", "json"),
        ("/api/schema/no-such-format", "json"),
    ],
)
def test_a_path_nothing_serves_is_told_by_where_it_is(site, path, kind):
    # No Accept header at all, as from curl: HTML unless the path is the API's.
    response = site.get(path)
    if kind == "json":
        assert_json(response, 404)
    else:
        assert_html(response, 404)


def test_a_request_for_another_host_is_refused_in_the_kind_of_its_path(site):
    assert_html(site.get("/", HTTP_HOST="other.example", HTTP_ACCEPT=BROWSER_ACCEPT), 400)
    response = site.post("/send-otp", {}, content_type="application/json", HTTP_HOST="other.example")
    assert_json(response, 400)


def test_the_pages_and_the_json_follow_accept_language(site):
    page = site.get("/no-such-page", HTTP_ACCEPT=BROWSER_ACCEPT, HTTP_ACCEPT_LANGUAGE="es")
    assert_html(page, 404, "No encontrado.", language="es")
    api = site.get("/send-otp/no-such-thing", HTTP_ACCEPT_LANGUAGE="es")
    assert_json(api, 404, "No encontrado.")


def test_the_500_page_needs_no_context_processor(site, settings):
    options = settings.TEMPLATES[0]["OPTIONS"]
    processors = [*options["context_processors"], "tests.test_error_pages.broken_context_processor"]
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "OPTIONS": {**options, "context_processors": processors}}]
    assert_html(site.get("/page/fail/500", HTTP_ACCEPT=BROWSER_ACCEPT), 500)


def test_a_500_page_that_cannot_be_rendered_falls_back_to_a_bare_one(site, settings, tmp_path, caplog):
    (tmp_path / "500.html").write_text('{% extends "no-such-template.html" %}')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    with caplog.at_level(logging.ERROR, logger="otpsite.errors"):
        response = site.get("/page/fail/500", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 500 and response.content.decode() == BARE_SERVER_ERROR
    assert [r.getMessage() for r in caplog.records if r.name == "otpsite.errors"] == [
        "The 500 page could not be rendered"
    ]
