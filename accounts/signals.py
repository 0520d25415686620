"""Logins, failures and logouts are audit events (S13)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.models import Outcome
from audit.services import record


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs) -> None:
    device = getattr(user, "otp_device", None)
    record(
        "login.success",
        actor=user,
        target=user.get_username(),
        details={"second_factor": device.__class__.__name__ if device else None},
    )


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django has already masked the password in `credentials`; keep only the identifier tried.
    attempted = str(credentials.get("username") or credentials.get("email") or "")[:254]
    record("login.failure", actor="anonymous", target=attempted, outcome=Outcome.FAILURE)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        record("logout", actor=user, target=user.get_username())
