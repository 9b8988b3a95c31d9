"""The home page (the HTML verification flow) under gunicorn with DEBUG off: its assets from the site, under a CSP."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest


@pytest.fixture(scope="module")
def site(launch):
    site = launch("home-page")
    yield site
    site.stop()


def test_the_home_page_asks_for_the_number(site):
    response = site.get("/", headers={"Accept-Language": "es"})
    assert response.status_code == 200, response.text[:500]
    html = response.text
    assert '<html lang="es"' in html and 'type="tel"' in html
    assert "otpsite-dev-hint" not in html  # the terminal hint is for DEBUG only
    assert "<script>" not in html and "<style>" not in html
    assert "sessionid" not in response.cookies


def test_the_home_page_allows_only_the_sites_own_files(site):
    policy = site.get("/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["form-action"] == "'self'"


def test_the_pages_assets_answer_from_the_site(site):
    html = site.get("/").text
    stylesheets = re.findall(r"<link[^>]*\shref=\"([^\"]+)\"", html)
    assert stylesheets == ["/static/otp/web/otp.css"]
    for url, content_type in [(stylesheets[0], "text/css"), ("/static/otp/web/webotp.js", "text/javascript")]:
        assert not urlsplit(url).netloc
        response = site.get(url)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(content_type), url
