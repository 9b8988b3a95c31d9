from django.contrib import admin
from django.urls import include, path

from otp.health import healthz

urlpatterns = [
    path("healthz", healthz),
    path("admin/", admin.site.urls),
    path("", include("otp.urls")),
]

handler400 = "otp.responses.handler400"
handler403 = "otp.responses.handler403"
handler404 = "otp.responses.handler404"
handler500 = "otp.responses.handler500"
