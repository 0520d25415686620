"""Staff roles hold exactly the permissions they need, and nothing drifts in (S11)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from accounts.roles import (
    BILLING,
    FIELD_ENGINEER,
    PROVISIONING,
    REVENUE_PROTECTION,
    ROLES,
    SECURITY_ADMIN,
    SUPPORT,
    sync_roles,
)
from accounts.services import assign_roles
from audit.models import AuditEvent


def _perms(group: Group) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


@pytest.mark.django_db
def test_migrate_creates_every_role_with_exactly_its_permissions():
    for role in ROLES:
        assert _perms(Group.objects.get(name=role.name)) == set(role.permissions)
    assert {r.name for r in ROLES} == {
        SUPPORT,
        PROVISIONING,
        BILLING,
        REVENUE_PROTECTION,
        FIELD_ENGINEER,
        SECURITY_ADMIN,
    }


@pytest.mark.django_db
def test_sync_removes_a_permission_granted_by_hand():
    support = Group.objects.get(name=SUPPORT)
    support.permissions.add(Permission.objects.get(codename="delete_user"))
    call_command("sync_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert "accounts.delete_user" not in _perms(support)


@pytest.mark.django_db
def test_no_role_may_alter_the_audit_log():
    sync_roles()
    for role in ROLES:
        perms = _perms(Group.objects.get(name=role.name))
        assert not {p for p in perms if p.startswith("audit.") and not p.startswith("audit.view")}


@pytest.mark.django_db
def test_support_reads_customers_but_not_the_audit_log(client, make_staff, verified_client):
    user, device = make_staff("support@example.org", roles=[SUPPORT])
    verified_client(user, device)
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get(f"/admin/accounts/user/{user.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditevent/").status_code == 403
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 403


@pytest.mark.django_db
def test_field_engineer_has_no_admin_data(client, make_staff, verified_client):
    user, device = make_staff("fe@example.org", roles=[FIELD_ENGINEER])
    verified_client(user, device)
    assert client.get("/staff/").status_code == 200
    for url in ("/admin/accounts/user/", "/admin/audit/auditevent/", "/admin/auth/group/"):
        assert client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_security_admin_reads_audit_log_but_cannot_change_it(client, make_staff, verified_client):
    user, device = make_staff("sec@example.org", roles=[SECURITY_ADMIN])
    verified_client(user, device)
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    event_id = AuditEvent.objects.first().pk
    assert client.get(f"/admin/audit/auditevent/{event_id}/delete/").status_code == 403


@pytest.mark.django_db
def test_security_admin_assigns_roles_but_cannot_mint_a_superuser(
    client, make_staff, verified_client, django_user_model
):
    user, device = make_staff("sec@example.org", roles=[SECURITY_ADMIN])
    target = django_user_model.objects.create_user("new@example.org", "a-Long-password-77")
    verified_client(user, device)
    page = client.get(f"/admin/accounts/user/{target.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert "is_superuser" not in form.fields
    assert "user_permissions" not in form.fields
    assert "groups" in form.fields


@pytest.mark.django_db
def test_assigning_a_role_makes_staff_and_is_audited(django_user_model):

    person = django_user_model.objects.create_user("eng@example.org", "a-Long-password-77")
    assign_roles(person, [BILLING], by="test")
    person.refresh_from_db()
    assert person.is_staff
    assert list(person.groups.values_list("name", flat=True)) == [BILLING]
    assert AuditEvent.objects.filter(action="staff.roles_changed", target=person.email).exists()
    with pytest.raises(ValueError):
        assign_roles(person, ["Root"], by="test")


@pytest.mark.django_db
def test_security_admin_cannot_take_over_a_superuser_or_raise_themselves(
    client, make_staff, verified_client
):
    admin_user, _ = make_staff("root@example.org", superuser=True)
    other, _ = make_staff("other@example.org", roles=[SUPPORT])
    user, device = make_staff("sec@example.org", roles=[SECURITY_ADMIN])
    verified_client(user, device)
    for target in (admin_user, user, other):
        assert client.get(f"/admin/accounts/user/{target.pk}/password/").status_code == 403
    assert client.get(f"/admin/accounts/user/{admin_user.pk}/change/").status_code in (200, 403)
    response = client.post(
        f"/admin/accounts/user/{admin_user.pk}/change/",
        {"email": "mine@example.org", "is_active": "on", "date_joined_0": "2026-01-01",
         "date_joined_1": "00:00:00"},
    )  # fmt: skip
    assert response.status_code == 403
    response = client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {"email": user.email, "is_active": "on", "groups": [], "date_joined_0": "2026-01-01",
         "date_joined_1": "00:00:00"},
    )  # fmt: skip
    assert response.status_code == 403
    # Second factors come only from create_staff or break-glass, never from the admin.
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    admin_user.refresh_from_db()
    assert admin_user.email == "root@example.org"
