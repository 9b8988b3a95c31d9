"""otpsite's URLs and error handlers, with views that fail on an API path and on a page."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from otpsite import urls as site

FAILURES: dict[int, type[Exception]] = {
    400: SuspiciousOperation,
    403: PermissionDenied,
    404: Http404,
    500: RuntimeError,
}


def fail(request: HttpRequest, status: int) -> HttpResponse:
    raise FAILURES[status]("a failure made by the test")


urlpatterns = [
    path("send-otp/fail/<int:status>", fail),
    path("page/fail/<int:status>", fail),
    *site.urlpatterns,
]

handler400 = site.handler400
handler403 = site.handler403
handler404 = site.handler404
handler500 = site.handler500
