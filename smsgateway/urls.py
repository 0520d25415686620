from django.urls import path

from . import views

app_name = "smsgateway"

urlpatterns = [
    path("<slug:gateway>/inbound", views.inbound, name="inbound"),
    path("<slug:gateway>/dlr", views.delivery_report, name="delivery_report"),
]
