"""Invoice pages: a customer sees only their own invoices; staff views need the permission and
are audited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from billing import services
from billing.models import Invoice, InvoiceKind, TariffKind

from .conftest import utc, write_readings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def invoice(make_tariff, make_account):
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    account, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    return services.issue_invoice(
        account, date(2025, 1, 1), date(2025, 2, 1), now=utc(2025, 2, 3), by="test"
    )


def test_customer_sees_own_invoice_and_pdf_but_not_others(client, invoice, django_user_model):
    client.force_login(invoice.account.customer)
    page = client.get(f"/billing/invoices/{invoice.number}/")
    assert page.status_code == 200 and b"74.40" in page.content
    assert invoice.number.encode() in client.get("/billing/invoices/").content
    pdf = client.get(f"/billing/invoices/{invoice.number}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    stranger = django_user_model.objects.create_user("stranger@example.com")
    client.force_login(stranger)
    assert client.get(f"/billing/invoices/{invoice.number}/").status_code == 404
    assert client.get(f"/billing/invoices/{invoice.number}/pdf").status_code == 404
    assert invoice.number.encode() not in client.get("/billing/invoices/").content


def test_staff_invoice_views_need_permission_and_are_audited(invoice, make_staff, verified_client):
    engineer, device = make_staff("fe@example.com", roles=["Field engineer"])
    client = verified_client(engineer, device)
    assert client.get(f"/staff/billing/invoices/{invoice.number}/").status_code == 403
    user, device = make_staff("support@example.com", roles=["Support"])  # view_invoice
    client = verified_client(user, device)
    before = AuditEvent.objects.count()
    assert client.get(f"/staff/billing/invoices/?q={invoice.number}").status_code == 200
    page = client.get(f"/staff/billing/invoices/{invoice.number}/")
    assert page.status_code == 200 and b"Issue a credit note" not in page.content
    assert client.get(f"/staff/billing/invoices/{invoice.number}/pdf").status_code == 200
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))[before:]
    assert actions == [
        "billing.invoices_listed",
        "billing.invoice_viewed",
        "billing.invoice_pdf_viewed",
    ]
    # Read-only: Support cannot issue a credit note.
    response = client.post(f"/staff/billing/invoices/{invoice.number}/credit", {"reason": "x"})
    assert response.status_code == 403
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).exists()


def test_billing_role_issues_credit_note(invoice, make_staff, verified_client):
    user, device = make_staff("billing@example.com", roles=["Billing"])
    client = verified_client(user, device)
    response = client.post(
        f"/staff/billing/invoices/{invoice.number}/credit", {"reason": "wrong tariff"}
    )
    assert response.status_code == 302
    note = Invoice.objects.get(kind=InvoiceKind.CREDIT_NOTE)
    assert note.credits_id == invoice.pk and note.total == Decimal("-74.40")
    event = AuditEvent.objects.filter(action="billing.credit_note_issued").get()
    assert event.target == f"invoice:{invoice.number}" and event.actor_id == user.pk


def test_staff_pages_need_a_verified_staff_session(client, invoice):
    client.force_login(invoice.account.customer)
    response = client.get(f"/staff/billing/invoices/{invoice.number}/")
    assert response.status_code == 302
