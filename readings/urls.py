"""The audited staff usage view of a meter."""

from django.urls import path

from . import staff_views

urlpatterns = [
    path(
        "staff/meters/<str:number>/usage/",
        staff_views.staff_meter_usage,
        name="staff_meter_usage",
    ),
]
