"""Manufacturer manifests: every row validated, imported all or nothing, with a per-row report."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from accounts.roles import PROVISIONING
from audit.models import AuditEvent
from devices.importer import import_manifest
from devices.models import Meter, Sim
from testing.devices import luhn_iccid

HEADER = "meter_number,msisdn,iccid,manufacturer,model,batch\n"


def manifest(n: int, start: int = 0) -> str:
    lines = [
        f"MANIFEST{i:017d},+4477011{i:05d},{luhn_iccid(f'894450020219{i:06d}')},Acme,M1,B7"
        for i in range(start, start + n)
    ]
    return HEADER + "\n".join(lines) + "\n"


@pytest.mark.django_db
def test_a_valid_manifest_imports_every_meter_with_its_sim():
    report = import_manifest(manifest(50).encode(), by="test", dry_run=False)
    assert report.ok and report.imported == 50
    assert Meter.objects.count() == 50 and Sim.objects.filter(meter__isnull=False).count() == 50
    assert AuditEvent.objects.get(action="devices.manifest_imported").details == {"meters": 50}


@pytest.mark.django_db
def test_one_bad_row_imports_nothing_and_is_named():
    text = manifest(20).splitlines()
    text[7] = text[7].replace("+4477011", "4477011")  # not E.164
    text[13] = "!" + text[13][1:]  # a meter number with a character no sticker has
    report = import_manifest(("\n".join(text) + "\n").encode(), by="test", dry_run=False)
    assert not report.ok and report.imported == 0
    assert [row.line for row in report.bad_rows] == [8, 14]
    assert "E.164" in report.bad_rows[0].errors[0]
    assert Meter.objects.count() == 0 and Sim.objects.count() == 0


@pytest.mark.django_db
def test_duplicates_in_the_file_and_in_the_database_are_reported():
    import_manifest(manifest(3).encode(), by="test", dry_run=False)
    text = manifest(3, start=2) + manifest(1, start=10).split("\n", 1)[1]
    text += manifest(1, start=10).split("\n", 1)[1]
    report = import_manifest(text.encode(), by="test", dry_run=False)
    problems = {row.line: row.errors for row in report.bad_rows}
    assert "meter number already registered" in problems[2]
    assert any("duplicate number" in e for e in problems[6])
    assert Meter.objects.count() == 3


@pytest.mark.django_db
def test_dry_run_reports_and_imports_nothing():
    report = import_manifest(manifest(10).encode(), by="test", dry_run=True)
    assert report.ok and report.imported == 0 and Meter.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"meter_number,msisdn\nX,Y\n", "missing column(s): iccid"),
        (HEADER.encode(), "no rows"),
        (b'meter_number,msisdn,iccid\n"unterminated,a,b\n', "not valid CSV"),
    ],
)
@pytest.mark.django_db
def test_hostile_or_broken_files_get_a_clear_reason(data, message):
    report = import_manifest(data, by="test", dry_run=False)
    assert not report.ok
    assert any(message in error for error in report.file_errors), report.file_errors
    assert Meter.objects.count() == 0


@pytest.mark.django_db
def test_import_through_the_admin(client, make_staff, verified_client):
    user, device = make_staff("prov@example.org", roles=[PROVISIONING])
    verified_client(user, device)
    upload = SimpleUploadedFile("m.csv", manifest(5).encode(), content_type="text/csv")
    response = client.post("/admin/devices/meter/import/", {"manifest": upload, "dry_run": "on"})
    assert response.status_code == 200 and b"The file is valid" in response.content
    assert Meter.objects.count() == 0
    upload = SimpleUploadedFile("m.csv", manifest(5).encode(), content_type="text/csv")
    response = client.post("/admin/devices/meter/import/", {"manifest": upload})
    assert response.status_code == 302 and Meter.objects.count() == 5


@pytest.mark.django_db
def test_import_command_shows_progress_and_fails_on_bad_rows(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(manifest(2500))
    err = io.StringIO()
    call_command("import_meters", str(good), stdout=io.StringIO(), stderr=err)
    assert "2000 rows" in err.getvalue() and Meter.objects.count() == 2500
    bad = tmp_path / "bad.csv"
    bad.write_text(manifest(2, start=5000).replace("Acme", "Acme").replace("+4477011", "+0"))
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_meters", str(bad), stdout=io.StringIO(), stderr=io.StringIO())
