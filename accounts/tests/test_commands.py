import io

import pytest
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.roles import SUPPORT
from audit.models import AuditEvent, Outcome


@pytest.mark.django_db
def test_break_glass_replaces_the_device_and_raises_an_alert(make_staff, mailoutbox, settings):
    settings.ADMINS = [("Ops", "ops@example.org")]
    user, old = make_staff("lost@example.org", roles=[SUPPORT])
    out = io.StringIO()
    call_command("breakglass_totp", user.email, reason="phone lost, ticket 4711", stdout=out)
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()
    new = TOTPDevice.objects.get(user=user)
    assert new.config_url in out.getvalue()
    event = AuditEvent.objects.get(action="staff.totp_break_glass")
    assert event.outcome == Outcome.ALERT
    assert event.details["reason"] == "phone lost, ticket 4711"
    assert mailoutbox and "break-glass" in mailoutbox[0].subject


@pytest.mark.django_db
def test_break_glass_needs_a_reason_and_a_staff_account(make_staff, django_user_model):
    user, _ = make_staff("lost@example.org", roles=[SUPPORT])
    with pytest.raises(CommandError):
        call_command("breakglass_totp", user.email, reason="x")
    django_user_model.objects.create_user("cust@example.org", "a-Long-password-77")
    with pytest.raises(CommandError):
        call_command("breakglass_totp", "cust@example.org", reason="customer wants staff access")
    assert not AuditEvent.objects.filter(action="staff.totp_break_glass").exists()


@pytest.mark.django_db
def test_create_staff_enforces_the_password_policy(monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "password")
    with pytest.raises(CommandError, match=r"too common|too short"):
        call_command("create_staff", "weak@example.org", "--role", SUPPORT)


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2(make_staff):
    user, _ = make_staff("hash@example.org", roles=[SUPPORT])
    assert user.password.startswith("argon2$")
