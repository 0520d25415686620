"""URLs of the ingest service (utility.settings_ingest): the gateway's endpoints only."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("sms/", include("smsgateway.urls")),
]
