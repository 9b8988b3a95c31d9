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

# Django's error pages: JSON like the API's on its paths, HTML elsewhere.
handler400 = "otpsite.errors.handler400"
handler403 = "otpsite.errors.handler403"
handler404 = "otpsite.errors.handler404"
handler500 = "otpsite.errors.handler500"
