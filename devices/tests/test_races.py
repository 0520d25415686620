"""Staff requests racing on a unique value get the answer a second, later request would get:
a report, a message or the form again, never a server error. Real concurrent requests, each on
its own database connection."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.roles import PROVISIONING, SECURITY_ADMIN
from devices.admin import RACED_SAVE
from devices.models import KeyRotation, Meter, Premises, Sim
from testing.processes import all_at_once
from testing.staff import STAFF_PASSWORD, totp_now

from .test_import import manifest

RACERS = 8


@pytest.fixture
def signed_in(make_staff):
    """signed_in(role) -> RACERS clients, each a different staff member of `role` signed in
    through the staff login (separate sessions, so each request's messages stay its own)."""

    def make(role: str) -> list[Client]:
        clients = []
        for n in range(RACERS):
            user, device = make_staff(f"{n}-{role.replace(' ', '')}@utility.example", roles=[role])
            client = Client(raise_request_exception=False)
            response = client.post(
                "/admin/login/",
                {"username": user.email, "password": STAFF_PASSWORD, "otp_token": totp_now(device)},
            )
            assert response.status_code == 302
            clients.append(client)
        return clients

    return make


def _page(response) -> str:
    # The page, not response.context: the test client's template capture is shared between
    # threads.
    return response.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_manifest_imported_at_once_registers_once_and_reports_the_rest(signed_in):
    data = manifest(30).encode()

    def upload(client):
        return lambda: client.post(
            "/admin/devices/meter/import/",
            {"manifest": SimpleUploadedFile("m.csv", data, content_type="text/csv")},
        )

    responses = all_at_once([upload(c) for c in signed_in(PROVISIONING)])
    assert sorted(r.status_code for r in responses) == [200] * (RACERS - 1) + [302]
    assert Meter.objects.count() == 30 and Sim.objects.count() == 30
    for refused in (r for r in responses if r.status_code == 200):
        assert b"meter number already registered" in refused.content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_premises_added_at_once_is_saved_once_and_the_rest_are_told(signed_in):
    def add(client):
        return lambda: client.post(
            "/admin/devices/premises/add/",
            {"reference": "PREM-0042", "address": "1 High St", "postcode": "AB1 2CD"},
            follow=True,
        )

    responses = all_at_once([add(c) for c in signed_in(PROVISIONING)])
    assert {r.status_code for r in responses} == {200}
    assert Premises.objects.filter(reference="PREM-0042").count() == 1
    told = [r for r in responses if RACED_SAVE in _page(r)]
    duplicate_form = [r for r in responses if "already exists" in _page(r)]
    # The winner was saved; every other request either lost the race at the constraint or
    # came late enough for the form's own duplicate check.
    assert len(told) + len(duplicate_form) == RACERS - 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_meter_scheduled_for_rotation_at_once_gets_one_rotation(signed_in, active_meter):
    meter, _, _ = active_meter()

    def schedule(client):
        return lambda: client.post(
            "/admin/devices/meter/",
            {"action": "schedule_rotation", "_selected_action": [meter.pk]},
            follow=True,
        )

    responses = all_at_once([schedule(c) for c in signed_in(SECURITY_ADMIN)])
    assert {r.status_code for r in responses} == {200}
    assert KeyRotation.objects.filter(meter=meter).count() == 1
    texts = [_page(r) for r in responses]
    assert sum("Scheduled 1 key rotations." in t for t in texts) == 1
    assert sum("already has a rotation open" in t for t in texts) == RACERS - 1
