"""URLs of the HTML pages; include them at any prefix::

    path("phone/", include("otp.web.urls"))     # /phone/, /phone/verify/, ...

The names live in the ``otp_web`` namespace: ``otp_web:start`` (the number),
``otp_web:verify`` (the code), ``otp_web:resend`` (the resend button's POST)
and ``otp_web:done`` (the default page after a verification).
"""

from __future__ import annotations

from django.urls import path

from otp.web import views

app_name = "otp_web"

urlpatterns = [
    path("", views.StartView.as_view(), name="start"),
    path("verify/", views.VerifyView.as_view(), name="verify"),
    path("resend/", views.ResendView.as_view(), name="resend"),
    path("verified/", views.DoneView.as_view(), name="done"),
]
