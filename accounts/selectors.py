"""Reads of customer accounts for the login and reset forms. Each is one statement whatever
exists, so how long it takes does not tell whether an address has an account."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import User


def users_with_email(email: str) -> QuerySet[User]:
    """Accounts whose own address or one of whose allauth addresses is `email`."""
    email = email.lower()
    return User.objects.filter(Q(email=email) | Q(emailaddress__email=email)).distinct()


def users_with_email_and_meter(email: str, number: str) -> QuerySet[User]:
    """Of those, the ones that occupy or have claimed the meter with this number."""
    return users_with_email(email).filter(
        Q(occupancies__meter__number=number) | Q(claims__meter_number=number)
    )
