"""S11: the billing run's database role can read readings and cannot change them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from billing import services
from billing.models import Invoice, TariffKind
from readings.models import Reading

from .conftest import utc, write_readings

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "billing-ro-test-password"


def ro_connect():
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        dbname=settings["NAME"],
        user="portal_billing_ro",
        password=PASSWORD,
        autocommit=True,
    )


def test_create_db_roles_dry_run_prints_and_does_nothing(capsys, monkeypatch):
    monkeypatch.setenv("PORTAL_BILLING_RO_DB_PASSWORD", "secret-not-printed")
    call_command("create_db_roles", "--dry-run")
    out = capsys.readouterr().out
    assert 'GRANT SELECT ON "readings_reading"' in out
    assert "secret-not-printed" not in out and "PASSWORD '********'" in out
    assert out.rstrip().endswith("-- dry run: nothing executed")


def test_billing_role_reads_readings_but_cannot_write_them(monkeypatch, make_meter):
    monkeypatch.setenv("PORTAL_BILLING_RO_DB_PASSWORD", PASSWORD)
    call_command("create_db_roles")
    call_command("create_db_roles")  # idempotent
    meter = make_meter()
    Reading.objects.create(meter=meter, hour=utc(2025, 1, 1), wh=10, received_at=timezone.now())
    with ro_connect() as ro:
        assert ro.execute("SELECT wh FROM readings_reading").fetchall() == [(10,)]
        for sql in (
            "INSERT INTO readings_reading VALUES (%s, '2025-01-01 01:00+00', 20, 1, now())",
            "UPDATE readings_reading SET wh = 0 WHERE meter_id = %s",
            "DELETE FROM readings_reading WHERE meter_id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ro.execute(sql, [meter.pk])
        # Nor the meters, and nothing billing owns may be deleted.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("UPDATE devices_meter SET status = 'active'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("DELETE FROM billing_invoice")
    assert Reading.objects.get(meter=meter).wh == 10


@pytest.mark.django_db(transaction=True, databases=["default", "billing_ro"])
def test_billing_run_works_through_the_read_only_role(
    monkeypatch, settings, make_tariff, make_account
):
    """The whole run with its reads going through `billing_ro` connected as
    portal_billing_ro: 372 kWh at 0.20 = 74.40."""
    monkeypatch.setenv("PORTAL_BILLING_RO_DB_PASSWORD", PASSWORD)
    call_command("create_db_roles")
    tariff = make_tariff({"kind": TariffKind.FLAT, "unit_price": Decimal("0.20")})
    _, meter = make_account(tariff)
    write_readings(meter, utc(2024, 12, 31), 24 * 33, wh0=0, per_hour=500)
    ro = connections["billing_ro"]
    ro.close()
    monkeypatch.setitem(ro.settings_dict, "NAME", connection.settings_dict["NAME"])
    monkeypatch.setitem(ro.settings_dict, "USER", "portal_billing_ro")
    monkeypatch.setitem(ro.settings_dict, "PASSWORD", PASSWORD)
    settings.BILLING_READ_DATABASE = "billing_ro"
    try:
        with ro.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone() == ("portal_billing_ro",)
        run = services.run_billing(date(2025, 1, 1), now=timezone.now(), by="test")
    finally:
        ro.close()
    assert run.invoices_issued == 1
    assert Invoice.objects.get().total == Decimal("74.40")
