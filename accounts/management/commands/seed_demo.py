from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.roles import ROLES
from accounts.services import create_staff_user

DEMO_PASSWORD = "demo-Staff-2fa!"  # noqa: S105  (published demo credential)
# A fixed, published TOTP secret so anyone trying the demo can add it to an authenticator app.
# Demo data is refused when DEBUG is off, so this secret never reaches a real deployment.
DEMO_TOTP_HEX = (
    "3132333435363738393031323334353637383930"  # base32 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
)


class Command(BaseCommand):
    help = "Create demo data for the embedded demo (refused when DEBUG is off)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo data is only for a DEBUG (embedded) install.")
        with transaction.atomic():
            self._staff("admin@example.org", "Demo administrator", [], superuser=True)
            for role in ROLES:
                slug = role.name.lower().replace(" ", "-")
                self._staff(f"{slug}@example.org", f"Demo {role.name.lower()}", [role.name])
        self.stdout.write(
            f"Demo staff (password for all: {DEMO_PASSWORD}):\n"
            "  admin@example.org (superuser) and <role>@example.org for each role\n"
            "  authenticator secret (base32): GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n"
            "  current code: python manage.py totp_code admin@example.org"
        )

    def _staff(self, email: str, name: str, roles: list[str], superuser: bool = False) -> None:
        if User.objects.filter(email=email).exists():
            return
        user, _ = create_staff_user(
            email=email,
            password=DEMO_PASSWORD,
            role_names=roles,
            by="seed_demo command",
            full_name=name,
            superuser=superuser,
        )
        TOTPDevice.objects.filter(user=user).update(key=DEMO_TOTP_HEX)
