"""The site's error pages: JSON on the API's paths, HTML elsewhere.

The API's paths are the otp app's endpoints, the OpenAPI schema and the
health checks, wherever the URLconf puts them, and every path under them: an
error there is the API's ``{"error": ..., "code": ...}``
(:mod:`otp.api.responses`), whatever the client accepts. Elsewhere the answer
is a small HTML page (``otpsite/templates/400.html`` ... ``500.html``), unless
the client's ``Accept`` header ranks JSON above HTML, as a script asking for
JSON does. A site that wants JSON everywhere uses ``otp.api.responses``'
handlers instead.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from otp.api import responses
from otp.exceptions import SERVER_ERROR

logger = logging.getLogger(__name__)

# Named routes whose paths, and everything under them, belong to the API.
API_URL_NAMES = ("otp:send", "otp:resend", "otp:verify", "schema", "healthz")
# The 500 page when even its template cannot be rendered.
BARE_SERVER_ERROR = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>500</title></head>'
    "<body><main><h1>500</h1></main></body></html>"
)


def api_paths() -> list[str]:
    """The paths of :data:`API_URL_NAMES` in the current URLconf (names it lacks are skipped)."""
    paths = []
    for name in API_URL_NAMES:
        try:
            paths.append(reverse(name).rstrip("/"))
        except NoReverseMatch:
            pass
    return paths


def wants_json(request: HttpRequest) -> bool:
    """On an API path, or asked for JSON above HTML."""
    path = request.path.rstrip("/")
    if any(path == prefix or path.startswith(prefix + "/") for prefix in api_paths()):
        return True
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def page(template_name: str, status: int, message: object) -> HttpResponse:
    # Rendered without the request: no context processor runs, so none can fail it.
    body = loader.render_to_string(template_name, {"status": status, "message": message})
    return HttpResponse(body, status=status)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return responses.handler400(request, exception)
    return page("400.html", 400, _("Bad request."))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return responses.handler403(request, exception)
    return page("403.html", 403, _("Forbidden."))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return responses.handler404(request, exception)
    return page("404.html", 404, _("Not found."))


def handler500(request: HttpRequest) -> HttpResponse:
    """Never fails: what broke the request may break the URLconf or the templates too."""
    try:
        if wants_json(request):
            return responses.handler500(request)
        return page("500.html", 500, SERVER_ERROR)
    except Exception:
        logger.exception("The 500 page could not be rendered")
        return HttpResponse(BARE_SERVER_ERROR, status=500)
