"""URLs of the app; include them where the endpoints should live.

Both ``send-otp`` and ``send-otp/`` match, so no slash redirect ever turns a
POST into a GET.
"""

from __future__ import annotations

from django.urls import re_path

from otp.api import views

app_name = "otp"

urlpatterns = [
    re_path(r"^send-otp/?$", views.SendCodeView.as_view(), name="send"),
    re_path(r"^resend-otp/?$", views.ResendCodeView.as_view(), name="resend"),
    re_path(r"^verify-otp/?$", views.VerifyCodeView.as_view(), name="verify"),
]
