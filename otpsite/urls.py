"""URLs of the demo site: the phone verification pages as the home page, the OTP endpoints, and the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from otp.health import liveness, readiness
from otpsite.apidocs import ApiDocsView

urlpatterns = [
    # /healthz is the readiness check, kept for probes that poll it.
    path("healthz", readiness, name="healthz"),
    path("healthz/live", liveness, name="healthz-live"),
    path("healthz/ready", readiness, name="healthz-ready"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("", include("otp.urls")),
    # The HTML pages: "/" asks for the number, then /verify/, /resend/, /verified/.
    path("", include("otp.web.urls")),
]

# Django's own error pages answer JSON with "error", like the API.
handler400 = "otp.api.responses.handler400"
handler403 = "otp.api.responses.handler403"
handler404 = "otp.api.responses.handler404"
handler500 = "otp.api.responses.handler500"
