import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import ROLE_NAMES
from accounts.services import create_staff_user
from accounts.totp_display import provisioning_text


class Command(BaseCommand):
    help = "Create a staff member with roles and a TOTP device (the secret is shown once)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument(
            "--role", action="append", default=[], choices=sorted(ROLE_NAMES), dest="roles"
        )
        parser.add_argument("--superuser", action="store_true")
        parser.add_argument("--full-name", default="")

    def handle(self, *args, email, roles, superuser, full_name, **options):
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        try:
            user, device = create_staff_user(
                email=email,
                password=password,
                role_names=roles,
                by="create_staff command",
                full_name=full_name,
                superuser=superuser,
            )
        except (ValidationError, ValueError) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from exc
        self.stdout.write(f"Created {user.email}. Add this to their authenticator app:\n")
        self.stdout.write(provisioning_text(device))
