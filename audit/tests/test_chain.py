"""The audit log is a tamper-evident chain (S13)."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit import chain
from audit.models import AuditEvent, Outcome
from audit.services import record
from audit.verify import verify_chain


def _write(n: int) -> list[AuditEvent]:
    return [
        record("test.event", actor="tester", target=f"thing-{i}", details={"i": i, "x": [1.5]})
        for i in range(n)
    ]


def _tamper(sql: str, params: list) -> None:
    """Change audit rows behind the application's back, as an intruder in the database would."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")


@pytest.mark.django_db
def test_an_intact_chain_verifies():
    events = _write(5)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[1].prev_hash == events[0].hash
    report = verify_chain()
    assert report.ok and report.checked == 5


@pytest.mark.django_db
def test_an_edited_record_is_named():
    _write(5)
    _tamper("UPDATE audit_auditevent SET target = %s WHERE seq = %s", ["someone-else", 3])
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_seq == 3
    assert "altered" in report.reason


@pytest.mark.django_db
def test_an_edited_detail_is_named():
    _write(4)
    evil = '{"i": 2, "x": [9.5]}'
    _tamper("UPDATE audit_auditevent SET details = %s WHERE seq = %s", [evil, 3])
    assert verify_chain().first_broken_seq == 3


@pytest.mark.django_db
def test_a_deleted_record_is_named():
    _write(5)
    _tamper("DELETE FROM audit_auditevent WHERE seq = %s", [2])
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_seq == 2
    assert "missing" in report.reason


@pytest.mark.django_db
def test_removing_the_newest_records_is_detected():
    _write(5)
    _tamper("DELETE FROM audit_auditevent WHERE seq >= %s", [4])
    report = verify_chain()
    assert not report.ok and report.first_broken_seq == 4


@pytest.mark.django_db
def test_a_rewritten_chain_without_the_key_is_detected(settings):
    _write(3)
    # An intruder recomputes record 2 with a key of their own choosing.

    event = AuditEvent.objects.get(seq=2)
    event.target = "forged"
    real_key = settings.AUDIT_KEY
    settings.AUDIT_KEY = "intruder-key-" + "z" * 30
    forged_hash = chain.seal(event)
    settings.AUDIT_KEY = real_key
    _tamper(
        "UPDATE audit_auditevent SET target = %s, hash = %s WHERE seq = %s",
        ["forged", forged_hash, 2],
    )
    assert verify_chain().first_broken_seq == 2


@pytest.mark.django_db
def test_verify_command_exits_non_zero_and_names_the_record(capsys):
    _write(3)
    call_command("verify_audit_chain")
    assert "intact: 3 records" in capsys.readouterr().out
    _tamper("UPDATE audit_auditevent SET outcome = %s WHERE seq = %s", [Outcome.FAILURE, 1])
    with pytest.raises(CommandError, match="record #1 was altered"):
        call_command("verify_audit_chain")


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_database_refuses_updates_and_deletes():
    [event] = _write(1)
    for sql in (
        "UPDATE audit_auditevent SET target = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(outcome=Outcome.FAILURE)
    assert verify_chain().ok


@pytest.mark.django_db
def test_source_address_comes_from_the_request(client, make_staff, verified_client):
    user, device = make_staff("sec@example.org", superuser=True)
    client.defaults["REMOTE_ADDR"] = "203.0.113.9"
    verified_client(user, device)
    assert AuditEvent.objects.get(action="login.success").source_ip == "203.0.113.9"


@pytest.mark.django_db
def test_admin_changes_are_audited(client, make_staff, verified_client, django_user_model):
    user, device = make_staff("root@example.org", superuser=True)
    target = django_user_model.objects.create_user("c@example.org", "a-Long-password-77")
    verified_client(user, device)
    response = client.post(
        f"/admin/accounts/user/{target.pk}/change/",
        {
            "email": "c@example.org",
            "full_name": "Changed Name",
            "is_active": "on",
            "last_login_0": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = AuditEvent.objects.get(action="admin.change")
    assert event.actor == user
    assert event.target.startswith(f"accounts.user:{target.pk} ")
    assert verify_chain().ok


def test_unknown_outcome_is_refused():
    with pytest.raises(ValueError):
        record("x", outcome="maybe")


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_chain_head_cannot_be_reset_or_deleted():
    _write(3)
    for sql in (
        "UPDATE audit_auditchainhead SET seq = 0",
        "UPDATE audit_auditchainhead SET seq = 3",
        "DELETE FROM audit_auditchainhead",
    ):
        with (
            pytest.raises(DatabaseError, match="chain head"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    _write(1)  # the application still appends
    assert verify_chain().ok and verify_chain().checked == 4
