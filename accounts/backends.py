"""Authentication backends, one per login: staff at /admin/login/ (username = e-mail), customers
at /accounts/login/ (allauth, `email=`). Each binds only its own login's credentials, so a
login runs exactly one backend and hashes the password exactly once whatever the account
(Django tries every backend whose signature fits; two backends meant two hashes on a failure
and one on a right password, which timed like an answer). A staff account never signs in at
the customer login, nor a customer at the staff login; both look like a wrong password."""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from .models import User
from .selectors import users_with_email


class StaffBackend(ModelBackend):
    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None
    ) -> User | None:
        # ModelBackend hashes the password for an unknown account too.
        user = super().authenticate(request, username=username or "", password=password or "")
        return user if user is not None and user.is_staff else None


class CustomerBackend(AuthenticationBackend):
    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, email: str | None = None, password: str | None = None
    ) -> User | None:
        # allauth's backend hashes the password for an unknown address too.
        user = super().authenticate(request, email=email or "", password=password or "")
        return user if user is not None and not user.is_staff else None

    def _authenticate_by_email(self, email: str, password: str) -> User | None:
        # One statement whatever exists: allauth's own lookup skips its second query when the
        # address is verified, which a stranger could time.
        for user in users_with_email(email):
            if self._check_password(user, password):
                return user
        return None
