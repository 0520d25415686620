"""Customer portal (/portal/) and the readings API (/api/) with its schema and docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import api, views

portal = [
    path("", views.home, name="home"),
    path("access/", views.access_page, name="access"),
    path("access/<int:token_id>/revoke/", views.revoke_token, name="revoke"),
    path("retention/", views.retention, name="retention"),
    path("meters/<str:number>/", views.meter_dashboard, name="meter"),
    path("meters/<str:number>/usage.json", views.usage_json, name="usage"),
    path("meters/<str:number>/readings.csv", views.readings_csv, name="csv"),
    path("meters/<str:number>/away/", views.declare_absence, name="absence"),
]

api_v1 = [
    path("meters/", api.MeterList.as_view(), name="meters"),
    path("meters/<str:number>/usage/", api.Usage.as_view(), name="usage"),
]

urlpatterns = [
    path("portal/", include((portal, "portal"))),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file, so no inline script is needed (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
