"""Customer invoice pages under /billing/, staff billing pages under /staff/billing/ (so the
staff 2FA middleware guards them too)."""

from django.urls import path

from . import views

urlpatterns = [
    path("billing/invoices/", views.my_invoices, name="billing_my_invoices"),
    path("billing/invoices/<str:number>/", views.my_invoice, name="billing_my_invoice"),
    path("billing/invoices/<str:number>/pdf", views.my_invoice_pdf, name="billing_my_invoice_pdf"),
    path("staff/billing/invoices/", views.staff_invoices, name="billing_staff_invoices"),
    path(
        "staff/billing/invoices/<str:number>/",
        views.staff_invoice,
        name="billing_staff_invoice",
    ),
    path(
        "staff/billing/invoices/<str:number>/pdf",
        views.staff_invoice_pdf,
        name="billing_staff_invoice_pdf",
    ),
    path(
        "staff/billing/invoices/<str:number>/credit",
        views.staff_credit_note,
        name="billing_staff_credit_note",
    ),
    path("staff/billing/runs/", views.staff_runs, name="billing_staff_runs"),
]
