"""The staff operations home and the runs started from it, under /staff/ (behind staff 2FA)."""

from django.urls import path

from . import views

app_name = "staff"

urlpatterns = [
    path("", views.staff_home, name="home"),
    path("runs/<str:kind>/start/", views.start_run, name="start_run"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
]
