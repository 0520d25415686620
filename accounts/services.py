"""Writes for staff accounts: creation and role assignment, each audited."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import record

from .models import User
from .otp import enrol_totp
from .roles import ROLE_NAMES


@transaction.atomic
def assign_roles(user: User, role_names: list[str], *, by: User | str) -> None:
    unknown = set(role_names) - ROLE_NAMES
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    user.groups.set(Group.objects.filter(name__in=role_names))
    user.is_staff = bool(role_names) or user.is_superuser
    user.save(update_fields=["is_staff"])
    record(
        "staff.roles_changed",
        actor=by,
        target=user.get_username(),
        details={"roles": sorted(role_names)},
    )


@transaction.atomic
def create_staff_user(
    *,
    email: str,
    password: str,
    role_names: list[str],
    by: User | str,
    full_name: str = "",
    superuser: bool = False,
) -> tuple[User, TOTPDevice]:
    """A staff member with roles and a TOTP device; the password must pass the policy."""
    from django.contrib.auth.password_validation import validate_password

    user = User(email=email.lower(), full_name=full_name)
    validate_password(password, user)
    user = (
        User.objects.create_superuser(email, password, full_name=full_name)
        if superuser
        else User.objects.create_user(email, password, full_name=full_name, is_staff=True)
    )
    record("staff.created", actor=by, target=user.email, details={"superuser": superuser})
    assign_roles(user, role_names, by=by)
    device = enrol_totp(user, by=by, reason="new staff account")
    return user, device
