"""Customers declare an absence on the portal (revenue protection sees it on every case of
the meter: test_dispatch.py::test_revenue_protection_pages); bad periods are refused with a
reason and nothing stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from fraud.models import Absence
from testing.customers import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def occupant(make_meter, client):
    meter = make_meter()
    user = make_customer("home@example.com", meter, start=timezone.now() - timedelta(days=400))
    client.force_login(user)
    return meter, user


def _declare(client, meter, first, last, note=""):
    return client.post(
        f"/portal/meters/{meter.number}/away/",
        {"first_day": first.isoformat(), "last_day": last.isoformat(), "note": note},
    )


def test_the_occupant_declares_an_absence(client, occupant):
    meter, user = occupant
    today = timezone.now().date()
    page = client.get(f"/portal/meters/{meter.number}/")
    assert b"Going away?" in page.content
    response = _declare(
        client, meter, today + timedelta(days=3), today + timedelta(days=16), "Spain"
    )
    assert response.status_code == 302
    absence = Absence.objects.get()
    assert (absence.meter, absence.declared_by, absence.note) == (meter, user, "Spain")
    assert AuditEvent.objects.filter(action="fraud.absence_declared").count() == 1
    assert b"Spain" in client.get(f"/portal/meters/{meter.number}/").content


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [
        (5, 2, b"must not be before"),
        (-30, -10, b"already over"),
        (1, 120, b"at most 92 days"),
        (400, 410, b"at most a year ahead"),
    ],
)
def test_bad_periods_are_refused_with_a_reason(client, occupant, first, last, reason):
    meter, _ = occupant
    today = timezone.now().date()
    response = _declare(client, meter, today + timedelta(days=first), today + timedelta(days=last))
    assert reason in client.get(response.url).content
    assert not Absence.objects.exists()
    assert AuditEvent.objects.filter(action="fraud.absence_refused").count() == 1


def test_nobody_declares_an_absence_for_someone_elses_meter(client, occupant, make_meter):
    other = make_meter()
    today = timezone.now().date()
    response = _declare(client, other, today, today + timedelta(days=3))
    assert response.status_code == 404
    assert not Absence.objects.exists()
