"""URLs of the demo site: the OTP endpoints at the root, and the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from otp.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("otp.urls")),
]

# Django's own error pages answer JSON with "error", like the API.
handler400 = "otp.responses.handler400"
handler403 = "otp.responses.handler403"
handler404 = "otp.responses.handler404"
handler500 = "otp.responses.handler500"
