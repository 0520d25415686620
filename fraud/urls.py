"""Mounted under /staff/ (the staff 2FA middleware covers every URL here)."""

from django.urls import path

from . import views

app_name = "fraud"

urlpatterns = [
    path("fraud/", views.case_list, name="cases"),
    path("fraud/cases/<int:pk>/", views.case_detail, name="case"),
    path("fraud/cases/<int:pk>/note/", views.case_note, name="case_note"),
    path("fraud/cases/<int:pk>/resolve/", views.case_resolve, name="case_resolve"),
    path("fraud/cases/<int:pk>/close/", views.case_close, name="case_close"),
    path("fraud/cases/<int:pk>/dispatch/", views.case_dispatch, name="case_dispatch"),
    path("fraud/work-orders/<int:pk>/approve/", views.work_order_approve, name="approve"),
    path("fraud/work-orders/<int:pk>/cancel/", views.work_order_cancel, name="cancel"),
    path("fraud/meters/<int:meter_id>/", views.meter_evidence, name="meter"),
    path("dispatch/", views.dispatch_list, name="dispatch"),
    path("dispatch/<int:pk>/", views.job_detail, name="job"),
    path("dispatch/<int:pk>/upload/", views.job_upload, name="job_upload"),
]
