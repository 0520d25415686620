from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("staff/", include("operations.urls")),
    path("staff/", include("fraud.urls")),
    path("sms/", include("smsgateway.urls")),
    path("", include("billing.urls")),
    path("accounts/", include("accounts.customers.urls")),
    path("", include("accounts.customers.portal.urls")),
    path("", include("readings.urls")),
]
